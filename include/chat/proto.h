/* The chat wire protocol: names, text, and the lines that carry them.
 *
 * Everything on the wire is a line of UTF-8 text ended by "\n" (see
 * docs/PROTOCOL.md). Chat text may not hold control characters, so a line
 * that starts with CHAT_CONTROL_CHAR (0x01) is always a control command and
 * can never be a user's message. Server-to-client lines are told apart by
 * their first byte: a name character starts a chat line, '*' a notice, '!'
 * an error, 0x01 a control reply.
 */
#ifndef CHAT_PROTO_H
#define CHAT_PROTO_H

#include <stdarg.h>
#include <stddef.h>

#include "buf.h"

#if defined(__GNUC__) || defined(__clang__)
#define CHAT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CHAT_PRINTF(f, a)
#endif

#define CHAT_PROTO_VERSION 1
#define CHAT_NAME_MAX 32           /* longest user name, in bytes */
#define CHAT_MAX_LINE_DEFAULT 8192 /* longest line a server accepts */
#define CHAT_CONTROL_CHAR '\001'   /* first byte of every control line */

/* Worst-case output size of chat_sanitize() for len input bytes. */
#define CHAT_SANITIZE_MAX(len) ((len)*4 + 1)

/* 0 when name is 1-CHAT_NAME_MAX characters from [A-Za-z0-9_.-], else
 * CHAT_ENAME. */
int chat_name_check(const char *name, size_t len);

/* Non-zero when two names are equal ignoring ASCII case. */
int chat_name_equal(const char *a, size_t alen, const char *b, size_t blen);

/* 0 when text is acceptable chat text: well-formed UTF-8 (no overlong forms,
 * no surrogates), no C0 control (TAB excepted), no DEL, no C1 control. An
 * empty text gives CHAT_EEMPTY, anything else unacceptable CHAT_ETEXT. */
int chat_text_check(const char *text, size_t len);

/* Makes untrusted text safe to print on a terminal: C0 controls and DEL
 * become caret notation ("^[" for ESC), C1 controls, bidirectional
 * controls (U+061C, U+202A-U+202E, U+2066-U+2069), invisible characters
 * (U+00AD, U+200B-U+200F, U+2060-U+2064, U+FEFF) and the line and
 * paragraph separators (U+2028, U+2029) become "\u009b"-style escapes, invalid
 * UTF-8 bytes become "\xff"-style escapes; TAB and printable UTF-8 pass
 * unchanged. Its output is printable ASCII and UTF-8 that it leaves as is,
 * so sanitising twice changes nothing. Writes at most cap - 1 bytes plus a
 * NUL to out (cap >= CHAT_SANITIZE_MAX(len) never truncates) and returns
 * the length written, NUL excluded. */
size_t chat_sanitize(const char *in, size_t len, char *out, size_t cap);

/* chat_sanitize(text) + "\n" in a new buffer with one reference, or NULL:
 * one line that is safe to print, whatever text holds ("\n" included). */
chat_buf_t *chat_safe_line(const char *text, size_t len);

/* printf, then chat_safe_line() over the whole result: the one way text
 * formatted at run time is made printable. ap is consumed. */
chat_buf_t *chat_vformat_safe(const char *fmt, va_list ap) CHAT_PRINTF(1, 0);
chat_buf_t *chat_format_safe(const char *fmt, ...) CHAT_PRINTF(1, 2);

/* Kinds of server-to-client lines. */
typedef enum {
  CHAT_LINE_CHAT,    /* "<name>: <text>" */
  CHAT_LINE_NOTICE,  /* "* <text>" */
  CHAT_LINE_ERROR,   /* "! <code> <text>" */
  CHAT_LINE_CONTROL, /* "\x01<VERB> <args>" */
  CHAT_LINE_INVALID  /* anything else */
} chat_line_kind;

typedef struct {
  chat_line_kind kind;
  const char *word; /* CHAT: sender name; ERROR: code; CONTROL: verb */
  size_t word_len;
  const char *text; /* CHAT: message; NOTICE, ERROR: text; CONTROL: args */
  size_t text_len;
} chat_line_t;

/* Classifies a server-to-client line (terminator already removed). Pointers
 * in out point into line. Returns 0, or CHAT_EPROTO with kind
 * CHAT_LINE_INVALID. */
int chat_line_parse(const char *line, size_t len, chat_line_t *out);

/* "<name>: <text>\n" in a new buffer with one reference, or NULL. */
chat_buf_t *chat_format_chat(const char *name, size_t name_len,
                             const char *text, size_t text_len);

/* "* <text>\n", printf-style. */
chat_buf_t *chat_format_notice(const char *fmt, ...) CHAT_PRINTF(1, 2);

/* "! <code> <text>\n", printf-style. */
chat_buf_t *chat_format_error(const char *code, const char *fmt, ...)
    CHAT_PRINTF(2, 3);

/* "\x01<verb> <args>\n", printf-style; args may be empty. */
chat_buf_t *chat_format_control(const char *verb, const char *fmt, ...)
    CHAT_PRINTF(2, 3);

/* printf into a new buffer; ap is consumed. */
chat_buf_t *chat_buf_vprintf(const char *fmt, va_list ap) CHAT_PRINTF(1, 0);

#endif /* CHAT_PROTO_H */
