/* File-transfer helpers: see include/chat/xfer.h. */
#include "chat/chat.h"

#include <string.h>

#include "internal.h"

int chat_filename_check(const char *name, size_t len) {
  if (len == 0 || len > CHAT_FILENAME_MAX || name[0] == '.')
    return CHAT_EFILENAME;
  if (memchr(name, '/', len) != NULL || memchr(name, '\\', len) != NULL)
    return CHAT_EFILENAME;
  if (chat_text_check(name, len) != 0 || memchr(name, '\t', len) != NULL)
    return CHAT_EFILENAME;
  /* Like a control character, a bidirectional override or an invisible
   * character makes the name shown differ from the file served. */
  if (chat__text_deceptive(name, len))
    return CHAT_EFILENAME;
  return 0;
}

size_t chat_part_name_len(const char *name, size_t len) {
  size_t max = CHAT_FILENAME_MAX - (sizeof(CHAT_PART_SUFFIX) - 1) - 1;

  if (len <= max)
    return len;
  /* Back off continuation bytes so no character is cut in two. */
  while (max > 0 && ((unsigned char)name[max] & 0xC0) == 0x80)
    max--;
  return max;
}

void chat_hex(const unsigned char *in, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";

  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 15];
  }
  out[2 * n] = '\0';
}

int chat_token_new(char out[CHAT_TOKEN_LEN + 1]) {
  unsigned char raw[CHAT_TOKEN_BYTES];
  int rc;

  /* Synchronous: getrandom(2) on Linux, never blocking once booted. */
  rc = uv_random(NULL, NULL, raw, sizeof(raw), 0, NULL);
  if (rc != 0)
    return rc;
  chat_hex(raw, sizeof(raw), out);
  return 0;
}

int chat_token_check(const char *s, size_t len) {
  if (len != CHAT_TOKEN_LEN)
    return CHAT_EPROTO;
  for (size_t i = 0; i < len; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return CHAT_EPROTO;
  return 0;
}

int chat_token_equal(const char *a, const char *b) {
  unsigned char diff = 0;

  for (size_t i = 0; i < CHAT_TOKEN_LEN; i++)
    diff |= (unsigned char)(a[i] ^ b[i]);
  return diff == 0;
}

int chat_parse_u64(const char *s, size_t len, size_t max_digits,
                   uint64_t *out) {
  uint64_t v = 0;

  if (len == 0 || len > max_digits || (len > 1 && s[0] == '0'))
    return CHAT_EPROTO;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return CHAT_EPROTO;
    if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
      return CHAT_EPROTO;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  *out = v;
  return 0;
}

int chat_args_split(const char *s, size_t len, int max, int rest,
                    const char **field, size_t *field_len) {
  const char *end = s + len;
  const char *sp;
  int n = 0;

  while (n < max) {
    if (n == max - 1 && rest)
      sp = end;
    else
      sp = memchr(s, ' ', (size_t)(end - s));
    if (sp == NULL)
      sp = end;
    if (sp == s)
      return CHAT_EPROTO; /* empty field: double space or missing */
    field[n] = s;
    field_len[n] = (size_t)(sp - s);
    n++;
    if (sp == end)
      break;
    s = sp + 1;
  }
  /* Too few fields, or something (even one space) after the last one. */
  if (n < max || field[n - 1] + field_len[n - 1] != end)
    return CHAT_EPROTO;
  return n;
}

int chat_xfer_parse_request(const char *line, size_t len,
                            char token[CHAT_TOKEN_LEN + 1]) {
  const char *f[3];
  size_t fl[3];
  uint64_t version;

  if (len > CHAT_XFER_HEADER_MAX ||
      chat_args_split(line, len, 3, 0, f, fl) != 3)
    return CHAT_EPROTO;
  if (fl[0] != strlen(CHAT_XFER_MAGIC) ||
      memcmp(f[0], CHAT_XFER_MAGIC, fl[0]) != 0)
    return CHAT_EPROTO;
  if (chat_parse_u64(f[1], fl[1], 3, &version) != 0 ||
      version != CHAT_XFER_VERSION)
    return CHAT_EPROTO;
  if (chat_token_check(f[2], fl[2]) != 0)
    return CHAT_EPROTO;
  memcpy(token, f[2], CHAT_TOKEN_LEN);
  token[CHAT_TOKEN_LEN] = '\0';
  return 0;
}

int chat_xfer_parse_reply(const char *line, size_t len, uint64_t *size,
                          const char **code, size_t *code_len,
                          const char **text, size_t *text_len) {
  const char *f[3];
  size_t fl[3];

  *code = *text = NULL;
  *code_len = *text_len = 0;
  if (len > CHAT_XFER_HEADER_MAX)
    return CHAT_EPROTO;
  if (len > 3 && memcmp(line, "OK ", 3) == 0) {
    if (chat_parse_u64(line + 3, len - 3, 19, size) != 0 ||
        *size > (uint64_t)INT64_MAX)
      return CHAT_EPROTO;
    return 0;
  }
  if (len > 4 && memcmp(line, "ERR ", 4) == 0) {
    if (chat_args_split(line + 4, len - 4, 2, 1, f, fl) == 2) {
      *code = f[0];
      *code_len = fl[0];
      *text = f[1];
      *text_len = fl[1];
      return CHAT_EREFUSED;
    }
    if (chat_args_split(line + 4, len - 4, 1, 0, f, fl) == 1) {
      *code = f[0]; /* a code without text */
      *code_len = fl[0];
      return CHAT_EREFUSED;
    }
  }
  return CHAT_EPROTO;
}
