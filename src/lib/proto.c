/* Names, chat text and protocol lines: see include/chat/proto.h. */
#include "chat/chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int is_name_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

int chat_name_check(const char *name, size_t len) {
  if (len == 0 || len > CHAT_NAME_MAX)
    return CHAT_ENAME;
  for (size_t i = 0; i < len; i++)
    if (!is_name_char((unsigned char)name[i]))
      return CHAT_ENAME;
  return 0;
}

static unsigned char ascii_lower(unsigned char c) {
  return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

int chat_name_equal(const char *a, size_t alen, const char *b, size_t blen) {
  if (alen != blen)
    return 0;
  for (size_t i = 0; i < alen; i++)
    if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i]))
      return 0;
  return 1;
}

/* Decodes one UTF-8 sequence at s (n bytes available). Returns its length
 * and stores the code point, or returns 0 for an invalid sequence (bad lead
 * byte, truncation, overlong form, surrogate, above U+10FFFF). */
static size_t utf8_decode(const unsigned char *s, size_t n, unsigned *cp) {
  unsigned c = s[0];
  size_t len;
  unsigned min;

  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2, min = 0x80, c &= 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3, min = 0x800, c &= 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4, min = 0x10000, c &= 0x07;
  } else {
    return 0;
  }
  if (n < len)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80)
      return 0;
    c = (c << 6) | (s[i] & 0x3F);
  }
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
    return 0;
  *cp = c;
  return len;
}

static int is_control(unsigned cp) {
  return (cp < 0x20 && cp != '\t') || cp == 0x7F || (cp >= 0x80 && cp < 0xA0);
}

/* Bidirectional overrides and isolates, and the Arabic letter mark (U+061C,
 * a direction mark like U+200E/U+200F), can make displayed text read
 * differently from what was sent ("Trojan Source"). */
static int is_bidi_control(unsigned cp) {
  return cp == 0x061C || (cp >= 0x202A && cp <= 0x202E) ||
         (cp >= 0x2066 && cp <= 0x2069);
}

/* Characters that print as nothing, or as a line break, so that two names
 * that differ only by them look the same: the soft hyphen (U+00AD),
 * zero-width spaces, joiners and direction marks (U+200B-U+200F), the line
 * and paragraph separators (U+2028, U+2029: some terminals start a new line
 * at them), the word joiner and invisible operators (U+2060-U+2064) and the
 * byte order mark (U+FEFF). */
static int is_invisible(unsigned cp) {
  return cp == 0x00AD || (cp >= 0x200B && cp <= 0x200F) || cp == 0x2028 ||
         cp == 0x2029 || (cp >= 0x2060 && cp <= 0x2064) || cp == 0xFEFF;
}

int chat__text_deceptive(const char *text, size_t len) {
  const unsigned char *s = (const unsigned char *)text;
  size_t i = 0, n;
  unsigned cp;

  while (i < len) {
    n = utf8_decode(s + i, len - i, &cp);
    if (n == 0)
      n = 1; /* not ours to judge: chat_text_check() refuses it */
    else if (is_bidi_control(cp) || is_invisible(cp))
      return 1;
    i += n;
  }
  return 0;
}

int chat_text_check(const char *text, size_t len) {
  const unsigned char *s = (const unsigned char *)text;
  size_t i = 0, n;
  unsigned cp;

  if (len == 0)
    return CHAT_EEMPTY;
  while (i < len) {
    n = utf8_decode(s + i, len - i, &cp);
    if (n == 0 || is_control(cp))
      return CHAT_ETEXT;
    i += n;
  }
  return 0;
}

/* Appends the escape for one character if it fits; returns 0 if not. */
static int put(char *out, size_t cap, size_t *o, const char *s, size_t n) {
  if (*o + n + 1 > cap)
    return 0;
  memcpy(out + *o, s, n);
  *o += n;
  return 1;
}

size_t chat_sanitize(const char *in, size_t len, char *out, size_t cap) {
  const unsigned char *s = (const unsigned char *)in;
  size_t i = 0, o = 0, n;
  unsigned cp;
  char esc[16];
  int ok = 1;

  if (cap == 0)
    return 0;
  while (i < len && ok) {
    n = utf8_decode(s + i, len - i, &cp);
    if (n == 0) {
      snprintf(esc, sizeof(esc), "\\x%02x", s[i]);
      ok = put(out, cap, &o, esc, 4);
      n = 1;
    } else if (cp < 0x20 && cp != '\t') {
      esc[0] = '^';
      esc[1] = (char)(cp + 0x40);
      ok = put(out, cap, &o, esc, 2);
    } else if (cp == 0x7F) {
      ok = put(out, cap, &o, "^?", 2);
    } else if (is_control(cp) || is_bidi_control(cp) || is_invisible(cp)) {
      snprintf(esc, sizeof(esc), "\\u%04x", cp);
      ok = put(out, cap, &o, esc, 6);
    } else {
      ok = put(out, cap, &o, in + i, n);
    }
    if (ok)
      i += n;
  }
  out[o] = '\0';
  return o;
}

chat_buf_t *chat_safe_line(const char *text, size_t len) {
  chat_buf_t *b = chat_buf_new(CHAT_SANITIZE_MAX(len) + 1);
  size_t n;

  if (b == NULL)
    return NULL;
  n = chat_sanitize(text, len, b->data, CHAT_SANITIZE_MAX(len));
  b->data[n] = '\n';
  b->len = n + 1;
  return b;
}

chat_buf_t *chat_vformat_safe(const char *fmt, va_list ap) {
  char stackbuf[1024];
  char *raw = stackbuf;
  chat_buf_t *b;
  va_list ap2;
  int n;

  va_copy(ap2, ap);
  n = vsnprintf(stackbuf, sizeof(stackbuf), fmt, ap2);
  va_end(ap2);
  if (n < 0)
    return NULL;
  if ((size_t)n >= sizeof(stackbuf)) {
    raw = malloc((size_t)n + 1);
    if (raw == NULL)
      return NULL;
    vsnprintf(raw, (size_t)n + 1, fmt, ap);
  }
  /* The whole result, not each argument: whatever the format and the
   * arguments hold, the line is safe and stays one line. */
  b = chat_safe_line(raw, (size_t)n);
  if (raw != stackbuf)
    free(raw);
  return b;
}

chat_buf_t *chat_format_safe(const char *fmt, ...) {
  va_list ap;
  chat_buf_t *b;

  va_start(ap, fmt);
  b = chat_vformat_safe(fmt, ap);
  va_end(ap);
  return b;
}

int chat_line_parse(const char *line, size_t len, chat_line_t *out) {
  const char *sp;
  size_t i;

  memset(out, 0, sizeof(*out));
  out->kind = CHAT_LINE_INVALID;
  if (len == 0)
    return CHAT_EPROTO;
  if (line[0] == CHAT_CONTROL_CHAR) {
    sp = memchr(line + 1, ' ', len - 1);
    out->kind = CHAT_LINE_CONTROL;
    out->word = line + 1;
    out->word_len = sp ? (size_t)(sp - line - 1) : len - 1;
    out->text = sp ? sp + 1 : line + len;
    out->text_len = sp ? len - (size_t)(sp - line) - 1 : 0;
    return 0;
  }
  if (len >= 2 && (line[0] == '*' || line[0] == '!') && line[1] == ' ') {
    if (line[0] == '*') {
      out->kind = CHAT_LINE_NOTICE;
      out->text = line + 2;
      out->text_len = len - 2;
      return 0;
    }
    sp = memchr(line + 2, ' ', len - 2);
    out->kind = CHAT_LINE_ERROR;
    out->word = line + 2;
    out->word_len = sp ? (size_t)(sp - line - 2) : len - 2;
    out->text = sp ? sp + 1 : line + len;
    out->text_len = sp ? len - (size_t)(sp - line) - 1 : 0;
    return 0;
  }
  for (i = 0; i < len && i <= CHAT_NAME_MAX; i++)
    if (line[i] == ':')
      break;
  if (i < len && i + 1 < len && line[i + 1] == ' ' &&
      chat_name_check(line, i) == 0) {
    out->kind = CHAT_LINE_CHAT;
    out->word = line;
    out->word_len = i;
    out->text = line + i + 2;
    out->text_len = len - i - 2;
    return 0;
  }
  return CHAT_EPROTO;
}

chat_buf_t *chat_buf_vprintf(const char *fmt, va_list ap) {
  va_list ap2;
  chat_buf_t *b;
  int n;

  va_copy(ap2, ap);
  n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0)
    return NULL;
  b = chat_buf_new((size_t)n + 1);
  if (b == NULL)
    return NULL;
  vsnprintf(b->data, (size_t)n + 1, fmt, ap);
  b->len = (size_t)n; /* the NUL vsnprintf needs is not part of the line */
  return b;
}

/* prefix + formatted text + "\n" in one buffer. */
static chat_buf_t *format_line(const char *prefix, const char *fmt, va_list ap)
    CHAT_PRINTF(2, 0);
static chat_buf_t *format_line(const char *prefix, const char *fmt,
                               va_list ap) {
  va_list ap2;
  size_t plen = strlen(prefix);
  chat_buf_t *b;
  int n;

  va_copy(ap2, ap);
  n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0)
    return NULL;
  b = chat_buf_new(plen + (size_t)n + 2);
  if (b == NULL)
    return NULL;
  memcpy(b->data, prefix, plen);
  vsnprintf(b->data + plen, (size_t)n + 1, fmt, ap);
  b->data[plen + (size_t)n] = '\n';
  b->len = plen + (size_t)n + 1;
  return b;
}

chat_buf_t *chat_format_chat(const char *name, size_t name_len,
                             const char *text, size_t text_len) {
  chat_buf_t *b = chat_buf_new(name_len + text_len + 3);

  if (b == NULL)
    return NULL;
  memcpy(b->data, name, name_len);
  b->data[name_len] = ':';
  b->data[name_len + 1] = ' ';
  memcpy(b->data + name_len + 2, text, text_len);
  b->data[name_len + 2 + text_len] = '\n';
  return b;
}

chat_buf_t *chat_format_notice(const char *fmt, ...) {
  va_list ap;
  chat_buf_t *b;

  va_start(ap, fmt);
  b = format_line("* ", fmt, ap);
  va_end(ap);
  return b;
}

chat_buf_t *chat_format_error(const char *code, const char *fmt, ...) {
  char prefix[64];
  va_list ap;
  chat_buf_t *b;

  snprintf(prefix, sizeof(prefix), "! %s ", code);
  va_start(ap, fmt);
  b = format_line(prefix, fmt, ap);
  va_end(ap);
  return b;
}

chat_buf_t *chat_format_control(const char *verb, const char *fmt, ...) {
  char prefix[64];
  va_list ap;
  chat_buf_t *b;

  va_start(ap, fmt);
  if (fmt[0] == '\0') {
    snprintf(prefix, sizeof(prefix), "%c%s", CHAT_CONTROL_CHAR, verb);
  } else {
    snprintf(prefix, sizeof(prefix), "%c%s ", CHAT_CONTROL_CHAR, verb);
  }
  b = format_line(prefix, fmt, ap);
  va_end(ap);
  return b;
}

/* Declared in tls.h; pure, so it lives here (the fuzz targets and the
 * known-hosts parser use it without OpenSSL). */
int chat_tls_fp_parse(const char *text, char out[CHAT_TLS_FP_MAX]) {
  size_t n = 0;
  static const char prefix[] = "sha256:";
  size_t i = 0;

  /* ASCII letters only fold: "| 0x20" would also take 0x12 for '2'. */
  while (i < 7 && ((text[i] >= 'A' && text[i] <= 'Z') ? text[i] + 32
                                                      : text[i]) == prefix[i])
    i++;
  if (i == 7)
    text += 7;
  for (; *text != '\0'; text++) {
    char ch = *text;
    if (ch == ':')
      continue;
    if (ch >= 'A' && ch <= 'F')
      ch = (char)(ch - 'A' + 'a');
    if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')) || n >= 64)
      return CHAT_EARG;
    out[n++] = ch;
  }
  if (n != 64)
    return CHAT_EARG;
  out[n] = '\0';
  return 0;
}
