/* Fuzz target: the file-connection header lines and file-transfer argument
 * checks (include/chat/xfer.h).
 *
 * The input is one header line (terminator removed), as the owner gets
 * "CHATFILE 1 <token>" and the requester gets "OK <size>" / "ERR <code>
 * <text>". Checks: a request that parses is exactly "CHATFILE 1 " plus a
 * valid token, and every line of that form parses; a reply "OK" re-formats
 * to the input byte for byte and stays within INT64_MAX; "ERR" code and text
 * point into the input; chat_filename_check and chat_parse_u64 agree with
 * plain models of docs/PROTOCOL.md. The input buffer has exactly the input's
 * size, so ASan reports any read past the line.
 */
#include "fuzz.h"

#include <inttypes.h>
#include <string.h>

#include "chat/chat.h"

#define REQ_PREFIX "CHATFILE 1 "
#define REQ_PREFIX_LEN (sizeof(REQ_PREFIX) - 1)

static int is_token(const char *s, size_t len) {
  if (len != CHAT_TOKEN_LEN)
    return 0;
  for (size_t i = 0; i < len; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return 0;
  return 1;
}

static void check_request(const char *line, size_t len) {
  char token[CHAT_TOKEN_LEN + 1];
  int rc, want;

  memset(token, 'X', sizeof(token));
  rc = chat_xfer_parse_request(line, len, token);
  want = len == REQ_PREFIX_LEN + CHAT_TOKEN_LEN &&
         memcmp(line, REQ_PREFIX, REQ_PREFIX_LEN) == 0 &&
         is_token(line + REQ_PREFIX_LEN, CHAT_TOKEN_LEN);
  FUZZ_CHECK(rc == 0 || rc == CHAT_EPROTO);
  FUZZ_CHECK((rc == 0) == want);
  if (rc == 0) {
    FUZZ_CHECK(token[CHAT_TOKEN_LEN] == '\0');
    FUZZ_CHECK(strlen(token) == CHAT_TOKEN_LEN);
    FUZZ_CHECK(chat_token_check(token, CHAT_TOKEN_LEN) == 0);
    FUZZ_CHECK(memcmp(line + REQ_PREFIX_LEN, token, CHAT_TOKEN_LEN) == 0);
    FUZZ_CHECK(chat_token_equal(token, line + REQ_PREFIX_LEN));
  }
}

static void check_reply(const char *line, size_t len) {
  uint64_t size = 0xdeadbeefu;
  const char *code = (const char *)1, *text = (const char *)1;
  size_t code_len = 7, text_len = 7;
  int rc = chat_xfer_parse_reply(line, len, &size, &code, &code_len, &text,
                                 &text_len);

  FUZZ_CHECK(rc == 0 || rc == CHAT_EREFUSED || rc == CHAT_EPROTO);
  if (rc == 0) {
    char again[64];
    int n;

    FUZZ_CHECK(len <= CHAT_XFER_HEADER_MAX);
    FUZZ_CHECK(size <= (uint64_t)INT64_MAX);
    n = snprintf(again, sizeof(again), "OK %llu", (unsigned long long)size);
    FUZZ_CHECK(n > 0 && (size_t)n == len && memcmp(again, line, len) == 0);
    FUZZ_CHECK(code == NULL && code_len == 0 && text == NULL && text_len == 0);
  } else if (rc == CHAT_EREFUSED) {
    FUZZ_CHECK(len <= CHAT_XFER_HEADER_MAX);
    FUZZ_CHECK(len > 4 && memcmp(line, "ERR ", 4) == 0);
    FUZZ_CHECK(code == line + 4);
    FUZZ_CHECK(fuzz_inside(code, code_len, line, len));
    FUZZ_CHECK(code_len > 0 && memchr(code, ' ', code_len) == NULL);
    if (text == NULL) {
      FUZZ_CHECK(text_len == 0);
      FUZZ_CHECK(code + code_len == line + len);
    } else {
      FUZZ_CHECK(fuzz_inside(text, text_len, line, len));
      FUZZ_CHECK(text_len > 0);
      FUZZ_CHECK(text == code + code_len + 1 && text[-1] == ' ');
      FUZZ_CHECK(text + text_len == line + len);
    }
  } else {
    FUZZ_CHECK(code == NULL && code_len == 0 && text == NULL && text_len == 0);
  }

  /* Every "OK <n>" with n a canonical decimal up to INT64_MAX parses. */
  if (len > 3 && len <= CHAT_XFER_HEADER_MAX && memcmp(line, "OK ", 3) == 0) {
    const char *d = line + 3;
    size_t dl = len - 3;
    int digits = 1;

    for (size_t i = 0; i < dl; i++)
      digits = digits && d[i] >= '0' && d[i] <= '9';
    if (digits && (dl == 1 || d[0] != '0') &&
        (dl < 19 || (dl == 19 && memcmp(d, "9223372036854775807", 19) <= 0)))
      FUZZ_CHECK(rc == 0);
    else
      FUZZ_CHECK(rc == CHAT_EPROTO);
  }
}

/* In valid UTF-8 a character's encoding never appears other than as that
 * character, so a byte search finds U+00AD (c2 ad), U+061C (d8 9c),
 * U+200B-U+200F (e2 80 8b-8f), U+2028-U+202E (e2 80 a8-ae), U+2060-U+2064
 * (e2 81 a0-a4), U+2066-U+2069 (e2 81 a6-a9) and U+FEFF (ef bb bf). */
static int has_deceptive(const char *s, size_t len) {
  const unsigned char *u = (const unsigned char *)s;

  for (size_t i = 0; i + 1 < len; i++) {
    if ((u[i] == 0xc2 && u[i + 1] == 0xad) ||
        (u[i] == 0xd8 && u[i + 1] == 0x9c))
      return 1;
    if (i + 2 >= len)
      continue;
    if (u[i] == 0xe2 && u[i + 1] == 0x80 &&
        ((u[i + 2] >= 0x8b && u[i + 2] <= 0x8f) ||
         (u[i + 2] >= 0xa8 && u[i + 2] <= 0xae)))
      return 1;
    if (u[i] == 0xe2 && u[i + 1] == 0x81 &&
        ((u[i + 2] >= 0xa0 && u[i + 2] <= 0xa4) ||
         (u[i + 2] >= 0xa6 && u[i + 2] <= 0xa9)))
      return 1;
    if (u[i] == 0xef && u[i + 1] == 0xbb && u[i + 2] == 0xbf)
      return 1;
  }
  return 0;
}

static void check_filename(const char *s, size_t len) {
  int rc = chat_filename_check(s, len);
  int want = len >= 1 && len <= CHAT_FILENAME_MAX && s[0] != '.' &&
             memchr(s, '/', len) == NULL && memchr(s, '\\', len) == NULL &&
             memchr(s, '\t', len) == NULL && chat_text_check(s, len) == 0 &&
             !has_deceptive(s, len);

  FUZZ_CHECK(rc == 0 || rc == CHAT_EFILENAME);
  FUZZ_CHECK((rc == 0) == want);
  if (rc == 0) {
    /* Never a path component that climbs or hides. */
    FUZZ_CHECK(!(len == 1 && s[0] == '.'));
    FUZZ_CHECK(!(len == 2 && s[0] == '.' && s[1] == '.'));
    FUZZ_CHECK(memchr(s, '\0', len) == NULL && memchr(s, '\n', len) == NULL);
  }
}

static void check_u64(const char *s, size_t len, size_t max_digits) {
  uint64_t v = 12345;
  int rc = chat_parse_u64(s, len, max_digits, &v);
  int want = len >= 1 && len <= max_digits && (len == 1 || s[0] != '0');

  for (size_t i = 0; want && i < len; i++)
    want = s[i] >= '0' && s[i] <= '9';
  if (want && len >= 20) /* UINT64_MAX is 18446744073709551615 */
    want = len == 20 && memcmp(s, "18446744073709551615", 20) <= 0;
  FUZZ_CHECK(rc == 0 || rc == CHAT_EPROTO);
  FUZZ_CHECK((rc == 0) == want);
  if (rc == 0) {
    char again[32];
    int n = snprintf(again, sizeof(again), "%" PRIu64, v);
    FUZZ_CHECK(n > 0 && (size_t)n == len && memcmp(again, s, len) == 0);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const size_t max_digits[] = {1, 3, 9, 19, 20, 30};
  const char *s = (const char *)data;

  check_request(s, size);
  check_reply(s, size);
  check_filename(s, size);
  for (size_t i = 0; i < sizeof(max_digits) / sizeof(max_digits[0]); i++)
    check_u64(s, size, max_digits[i]);
  /* The size field alone, as chat_xfer_parse_reply sees it. */
  if (size > 3 && memcmp(s, "OK ", 3) == 0)
    check_u64(s + 3, size - 3, 19);
  if (chat_token_check(s, size) == 0) {
    FUZZ_CHECK(is_token(s, size));
    FUZZ_CHECK(chat_token_equal(s, s));
  } else {
    FUZZ_CHECK(!is_token(s, size));
  }
  /* Hex of the first bytes: lower-case digits that read back. */
  {
    char hex[2 * CHAT_TOKEN_BYTES + 1];
    size_t n = size < CHAT_TOKEN_BYTES ? size : CHAT_TOKEN_BYTES;

    chat_hex(data, n, hex);
    FUZZ_CHECK(strlen(hex) == 2 * n && is_token(hex, 2 * n) == (n == 16));
    for (size_t i = 0; i < n; i++) {
      unsigned hi = (unsigned)(hex[2 * i] <= '9' ? hex[2 * i] - '0'
                                                 : hex[2 * i] - 'a' + 10);
      unsigned lo =
          (unsigned)(hex[2 * i + 1] <= '9' ? hex[2 * i + 1] - '0'
                                           : hex[2 * i + 1] - 'a' + 10);
      FUZZ_CHECK(hi < 16 && lo < 16 && (hi << 4 | lo) == data[i]);
    }
  }
  return 0;
}
