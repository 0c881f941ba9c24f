/* File transfer: the pure parts (names, tokens, the file-connection header
 * and control-line arguments). See docs/PROTOCOL.md, "File transfer". */
#ifndef CHAT_XFER_H
#define CHAT_XFER_H

#include <stddef.h>
#include <stdint.h>

#define CHAT_FILENAME_MAX 255 /* longest requestable file name, bytes */
#define CHAT_TOKEN_BYTES 16   /* 128 random bits */
#define CHAT_TOKEN_LEN 32     /* as lower-case hex */
#define CHAT_DIGEST_BYTES 32  /* SHA-256 trailer after the file bytes */
/* longest header line on a file connection */
#define CHAT_XFER_HEADER_MAX 128
#define CHAT_XFER_MAGIC "CHATFILE"
#define CHAT_XFER_VERSION 1
/* mkstemp's template for a download in flight: "." <file> CHAT_PART_SUFFIX */
#define CHAT_PART_SUFFIX ".part-XXXXXX"

/* 0 when name may be requested and served: 1-CHAT_FILENAME_MAX bytes of
 * chat text (valid UTF-8, no control characters), no TAB, '/' or '\\', not
 * starting with '.', no bidirectional control (U+061C, U+202A-U+202E,
 * U+2066-U+2069), no invisible character (U+00AD, U+200B-U+200F,
 * U+2060-U+2064, U+FEFF) and no line or paragraph separator (U+2028,
 * U+2029).
 * Otherwise CHAT_EFILENAME. */
int chat_filename_check(const char *name, size_t len);

/* How many leading bytes of a valid file name go into its temporary name
 * "." <name> CHAT_PART_SUFFIX: all of them when that is at most
 * CHAT_FILENAME_MAX bytes (a name of up to 242 bytes), else the longest
 * prefix that fits and ends on a UTF-8 character boundary. */
size_t chat_part_name_len(const char *name, size_t len);

/* Fills out with CHAT_TOKEN_LEN lower-case hex digits and a NUL, from the
 * operating system's CSPRNG. Returns 0 or a libuv error. */
int chat_token_new(char out[CHAT_TOKEN_LEN + 1]);

/* 0 when s is exactly CHAT_TOKEN_LEN lower-case hex digits. */
int chat_token_check(const char *s, size_t len);

/* Compares two tokens in time independent of where they differ. */
int chat_token_equal(const char *a, const char *b);

/* Parses "CHATFILE 1 <token>" into token (NUL-terminated). Returns 0,
 * CHAT_EPROTO. */
int chat_xfer_parse_request(const char *line, size_t len,
                            char token[CHAT_TOKEN_LEN + 1]);

/* Parses the owner's answer: "OK <size>" gives 0 and *size; "ERR <code>
 * <text>" gives CHAT_EREFUSED with code/text pointing into line; anything
 * else (a size over INT64_MAX, a sign, junk) gives CHAT_EPROTO. */
int chat_xfer_parse_reply(const char *line, size_t len, uint64_t *size,
                          const char **code, size_t *code_len,
                          const char **text, size_t *text_len);

/* Parses a whole unsigned decimal number of at most max_digits digits with
 * no sign, spaces or leading zeros (except "0"). Returns 0 or CHAT_EPROTO. */
int chat_parse_u64(const char *s, size_t len, size_t max_digits, uint64_t *out);

/* Splits control-line arguments at single spaces into at most max fields;
 * when rest is non-zero the last field takes the remainder of the line,
 * spaces included. Returns the number of fields, or CHAT_EPROTO when there
 * are fewer than max (or, without rest, more) or a field is empty. */
int chat_args_split(const char *s, size_t len, int max, int rest,
                    const char **field, size_t *field_len);

/* Lower-case hex of n bytes into out (2n + 1 bytes with the NUL). */
void chat_hex(const unsigned char *in, size_t n, char *out);

#endif /* CHAT_XFER_H */
