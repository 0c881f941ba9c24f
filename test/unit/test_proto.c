/* Unit tests of the wire protocol helpers (include/chat/proto.h) and of the
 * error strings (include/chat/error.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "chat/buf.h"
#include "chat/error.h"
#include "chat/proto.h"

#define S(lit) (lit), (sizeof(lit) - 1)

/* ---- names ---------------------------------------------------------- */

static void test_name_check_accepts_valid_names(void **state) {
  static const char max[] = "abcdefghijklmnopqrstuvwxyz012345";

  assert_int_equal(sizeof(max) - 1, CHAT_NAME_MAX);
  assert_int_equal(chat_name_check(S("a")), 0);
  assert_int_equal(chat_name_check(S(max)), 0);
  assert_int_equal(chat_name_check(S("A-z_0.9")), 0);
  assert_int_equal(chat_name_check(S("-")), 0);
  assert_int_equal(chat_name_check(S("ZZ")), 0);
}

static void test_name_check_rejects_invalid_names(void **state) {
  static const char too_long[] = "abcdefghijklmnopqrstuvwxyz0123456";
  static const char *const bad[] = {
      " ", "a b",  "a/b", "/",   "\xc3\xa9", "caf\xc3\xa9", ":", "a:", "*",
      "!", "\x01", "a\n", "a\t", "~",        "@",           "[", "`",  "{",
  };

  assert_int_equal(sizeof(too_long) - 1, CHAT_NAME_MAX + 1);
  assert_int_equal(chat_name_check("", 0), CHAT_ENAME);
  assert_int_equal(chat_name_check(S(too_long)), CHAT_ENAME);
  assert_int_equal(chat_name_check(S("ab\0c")), CHAT_ENAME);
  assert_int_equal(chat_name_check(S("\0")), CHAT_ENAME);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(chat_name_check(bad[i], strlen(bad[i])), CHAT_ENAME);
}

/* Every byte outside [A-Za-z0-9_.-] is refused, alone and inside a name. */
static void test_name_check_every_byte(void **state) {
  for (int c = 0; c < 256; c++) {
    char name[3] = {'a', (char)c, 'b'};
    int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
             (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
    int want = ok ? 0 : CHAT_ENAME;

    assert_int_equal(chat_name_check(name + 1, 1), want);
    assert_int_equal(chat_name_check(name, 3), want);
  }
}

static void test_name_equal_ignores_ascii_case(void **state) {
  assert_true(chat_name_equal(S("alice"), S("alice")));
  assert_true(chat_name_equal(S("Alice"), S("aLICE")));
  assert_true(chat_name_equal(S("A-Z_0.9"), S("a-z_0.9")));
  assert_false(chat_name_equal(S("alice"), S("alicf")));
  assert_false(chat_name_equal(S("alice"), S("bob")));
}

static void test_name_equal_is_length_sensitive(void **state) {
  assert_false(chat_name_equal(S("alice"), S("alic")));
  assert_false(chat_name_equal(S("alic"), S("alice")));
  assert_false(chat_name_equal(S("a"), "", 0));
  assert_true(chat_name_equal("alice", 3, "ALIbaba", 3));
}

/* Bytes that differ only in bit 0x20 but are not letters are different. */
static void test_name_equal_folds_letters_only(void **state) {
  assert_false(chat_name_equal(S("["), S("{")));
  assert_false(chat_name_equal(S("@"), S("`")));
  assert_false(chat_name_equal(S("_"), S("\x7f")));
  assert_false(chat_name_equal(S("-"), S("\r")));
  assert_false(chat_name_equal(S("\xc3\xa9"), S("\xc3\x89")));
}

/* ---- text ----------------------------------------------------------- */

static void test_text_check_accepts_valid_text(void **state) {
  static const char *const good[] = {
      "hello, world!",
      "h\xc3\xa9llo",     /* 2-byte */
      "\xe2\x82\xac",     /* 3-byte: euro sign */
      "\xf0\x9f\x98\x80", /* 4-byte: emoji */
      "col1\tcol2",       /* TAB is allowed */
      "\t",
      "~ !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}",
      "\xc2\xa0",         /* U+00A0, first after the C1 range */
      "\xdf\xbf",         /* U+07FF */
      "\xe0\xa0\x80",     /* U+0800 */
      "\xed\x9f\xbf",     /* U+D7FF, just below the surrogates */
      "\xee\x80\x80",     /* U+E000, just above them */
      "\xef\xbf\xbd",     /* U+FFFD */
      "\xf0\x90\x80\x80", /* U+10000 */
      "\xf4\x8f\xbf\xbf", /* U+10FFFF, the last code point */
  };

  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    if (chat_text_check(good[i], strlen(good[i])) != 0) {
      print_error("rejected good text #%zu\n", i);
      fail();
    }
  }
}

static void test_text_check_empty(void **state) {
  assert_int_equal(chat_text_check("", 0), CHAT_EEMPTY);
}

static void test_text_check_rejects_controls(void **state) {
  char text[3];

  for (int c = 0; c < 0x20; c++) {
    if (c == '\t')
      continue;
    text[0] = 'a';
    text[1] = (char)c;
    text[2] = 'b';
    assert_int_equal(chat_text_check(text, 3), CHAT_ETEXT);
    assert_int_equal(chat_text_check(text + 1, 1), CHAT_ETEXT);
  }
  assert_int_equal(chat_text_check(S("\x1b[31mred")), CHAT_ETEXT);
  assert_int_equal(chat_text_check(S("a\0b")), CHAT_ETEXT);
  assert_int_equal(chat_text_check(S("a\rb")), CHAT_ETEXT);
  assert_int_equal(chat_text_check(S("a\nb")), CHAT_ETEXT);
  assert_int_equal(chat_text_check(S("a\x7f")), CHAT_ETEXT);
}

static void test_text_check_rejects_c1_controls(void **state) {
  char text[2];

  for (int c = 0x80; c < 0xa0; c++) {
    text[0] = '\xc2';
    text[1] = (char)c;
    assert_int_equal(chat_text_check(text, 2), CHAT_ETEXT);
  }
  assert_int_equal(chat_text_check(S("next\xc2\x85line")), CHAT_ETEXT);
  assert_int_equal(chat_text_check(S("\xc2\x9b"
                                     "31m")),
                   CHAT_ETEXT);
}

static void test_text_check_rejects_invalid_utf8(void **state) {
  static const struct {
    const char *text;
    size_t len;
  } bad[] = {
      {S("\xc0\xaf")},                 /* overlong '/' */
      {S("\xc1\xbf")},                 /* overlong */
      {S("\xe0\x80\xaf")},             /* overlong, 3 bytes */
      {S("\xe0\x9f\xbf")},             /* overlong U+07FF */
      {S("\xf0\x80\x80\xaf")},         /* overlong, 4 bytes */
      {S("\xf0\x8f\xbf\xbf")},         /* overlong U+FFFF */
      {S("\xed\xa0\x80")},             /* surrogate U+D800 */
      {S("\xed\xbf\xbf")},             /* surrogate U+DFFF */
      {S("\xed\xa0\xbd\xed\xb8\x80")}, /* CESU-8 surrogate pair */
      {S("\xf4\x90\x80\x80")},         /* U+110000 */
      {S("\xf5\x80\x80\x80")},
      {S("\xff")},
      {S("\xfe")},
      {S("a\xffz")},
      {S("\x80")}, /* lone continuation */
      {S("a\xbfz")},
      {S("\xc3")},         /* truncated 2-byte */
      {S("\xe2\x82")},     /* truncated 3-byte */
      {S("\xf0\x9f\x98")}, /* truncated 4-byte */
      {S("\xe2\x82"
         "a")},            /* truncated, then ASCII */
      {S("\xc3\xc3\xa9")}, /* lead byte followed by a lead byte */
      {S("ok\xf0\x9f")},
  };

  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    if (chat_text_check(bad[i].text, bad[i].len) != CHAT_ETEXT) {
      print_error("accepted bad text #%zu\n", i);
      fail();
    }
  }
}

/* ---- sanitize ------------------------------------------------------- */

static void assert_sanitized(const char *in, size_t len, const char *want) {
  size_t cap = CHAT_SANITIZE_MAX(len);
  char *out = malloc(cap);
  size_t n;

  assert_non_null(out);
  n = chat_sanitize(in, len, out, cap);
  if (n != strlen(want) || memcmp(out, want, n) != 0) {
    print_error("sanitize gave %zu bytes, want \"%s\"\n", n, want);
    fail();
  }
  assert_int_equal(out[n], '\0');
  free(out);
}

static void test_sanitize_caret_notation(void **state) {
  assert_sanitized(S("\x1b[31m"), "^[[31m");
  assert_sanitized(S("a\x7f"), "a^?");
  assert_sanitized(S("a\0b"), "a^@b");
  assert_sanitized(S("\r\n"), "^M^J");
  assert_sanitized(S("\x01"), "^A");
  assert_sanitized(S("\x1f"), "^_");
}

static void test_sanitize_keeps_tab_and_utf8(void **state) {
  assert_sanitized(S("a\tb"), "a\tb");
  assert_sanitized(S("plain text"), "plain text");
  assert_sanitized(S("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"),
                   "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80");
  assert_sanitized(S("\xc2\xa0\xf4\x8f\xbf\xbf"), "\xc2\xa0\xf4\x8f\xbf\xbf");
}

static void test_sanitize_escapes_invalid_bytes(void **state) {
  assert_sanitized(S("\xff"), "\\xff");
  assert_sanitized(S("a\xfe"
                     "b"),
                   "a\\xfeb");
  assert_sanitized(S("\xc0\xaf"), "\\xc0\\xaf");
  assert_sanitized(S("\xed\xa0\x80"), "\\xed\\xa0\\x80");
  assert_sanitized(S("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");
  assert_sanitized(S("\xe2\x82"
                     "a"),
                   "\\xe2\\x82a");
  assert_sanitized(S("\xc3"), "\\xc3");
  /* A truncated sequence does not swallow the valid character after it. */
  assert_sanitized(S("\xe2\x82\xe2\x82\xac"), "\\xe2\\x82\xe2\x82\xac");
}

static void test_sanitize_escapes_c1_and_bidi(void **state) {
  assert_sanitized(S("\xc2\x9b"), "\\u009b");
  assert_sanitized(S("\xc2\x85"), "\\u0085");
  assert_sanitized(S("\xc2\x80"), "\\u0080");
  assert_sanitized(S("\xc2\x9f"), "\\u009f");
  assert_sanitized(S("abc\xe2\x80\xae"
                     "cba"),
                   "abc\\u202ecba");
}

static void test_sanitize_escapes_invisible_characters(void **state) {
  assert_sanitized(S("a\xe2\x80\x8b"
                     "b"),
                   "a\\u200bb");
  assert_sanitized(S("\xe2\x80\x8c\xe2\x80\x8d\xe2\x80\x8e\xe2\x80\x8f"),
                   "\\u200c\\u200d\\u200e\\u200f");
  assert_sanitized(S("\xef\xbb\xbfname"), "\\ufeffname");
  /* Their neighbours are ordinary characters. */
  assert_sanitized(S("\xe2\x80\x8a\xe2\x80\x90\xef\xbb\xbe\xef\xbc\x80"),
                   "\xe2\x80\x8a\xe2\x80\x90\xef\xbb\xbe\xef\xbc\x80");
}

/* Sanitised text sanitised again is unchanged, so text made of
 * already-sanitised parts (a reason quoting the server) can be sanitised
 * as a whole. Checked for every byte and every code point, alone and
 * between other characters. */
static void test_sanitize_is_idempotent(void **state) {
  char in[8], once[64], twice[64];
  size_t n, m, len;

  for (unsigned v = 0; v < 0x110000 + 256; v++) {
    if (v < 0x110000) {
      if (v >= 0xd800 && v <= 0xdfff)
        continue;
      in[0] = 'a';
      len = 1 + (v < 0x80      ? (in[1] = (char)v, 1)
                 : v < 0x800   ? (in[1] = (char)(0xc0 | v >> 6),
                                in[2] = (char)(0x80 | (v & 0x3f)), 2)
                 : v < 0x10000 ? (in[1] = (char)(0xe0 | v >> 12),
                                  in[2] = (char)(0x80 | ((v >> 6) & 0x3f)),
                                  in[3] = (char)(0x80 | (v & 0x3f)), 3)
                               : (in[1] = (char)(0xf0 | v >> 18),
                                  in[2] = (char)(0x80 | ((v >> 12) & 0x3f)),
                                  in[3] = (char)(0x80 | ((v >> 6) & 0x3f)),
                                  in[4] = (char)(0x80 | (v & 0x3f)), 4));
    } else {
      in[0] = 'a';
      in[1] = (char)(v - 0x110000); /* a single byte, valid or not */
      len = 2;
    }
    in[len++] = 'z';
    n = chat_sanitize(in, len, once, sizeof(once));
    m = chat_sanitize(once, n, twice, sizeof(twice));
    if (m != n || memcmp(once, twice, n) != 0) {
      print_error("0x%x: \"%s\" became \"%s\"\n", v, once, twice);
      fail();
    }
  }
}

/* ---- the one output path -------------------------------------------- */

static void assert_safe(chat_buf_t *b, const char *want) {
  assert_non_null(b);
  if (b->len != strlen(want) || memcmp(b->data, want, b->len) != 0) {
    print_error("got \"%.*s\", want \"%s\"\n", (int)b->len, b->data, want);
    fail();
  }
  chat_buf_unref(b);
}

static void test_format_safe_neutralises_every_argument(void **state) {
  /* An owner's ERR code and text: a retitle (OSC 0 ... BEL) and CSI. */
  assert_safe(chat_format_safe("refused by the owner (%s: %s)", "bad\x1b",
                               "\x1b]0;pwned\x07 \x1b[31m"),
              "refused by the owner (bad^[: ^[]0;pwned^G ^[[31m)\n");
  /* C1 CSI, bidi override, invisible characters, invalid bytes. */
  assert_safe(chat_format_safe("%s|%s|%s|%s",
                               "\xc2\x9b"
                               "31m",
                               "\xe2\x80\xae"
                               "txt.exe",
                               "a\xe2\x80\x8b"
                               "b\xef\xbb\xbf",
                               "\xff"),
              "\\u009b31m|\\u202etxt.exe|a\\u200bb\\ufeff|\\xff\n");
  /* A newline in an argument cannot start a second line. */
  assert_safe(chat_format_safe("from %s", "alice\nbob: forged"),
              "from alice^Jbob: forged\n");
  assert_safe(chat_format_safe("%s", "\r\n"), "^M^J\n");
  /* Already sanitised parts come out as they went in. */
  assert_safe(chat_format_safe("%s and %s", "^[[2J \\u202e \\xff", "\x1b"),
              "^[[2J \\u202e \\xff and ^[\n");
  /* Tabs, UTF-8 and numbers pass. */
  assert_safe(chat_format_safe("%s\t%d bytes", "caf\xc3\xa9", 42),
              "caf\xc3\xa9\t42 bytes\n");
  assert_safe(chat_format_safe("%s", ""), "\n");
}

/* Every byte value, as the only character of an argument, comes out as
 * chat_sanitize gives it: the format adds no way around the sanitiser. */
static void test_format_safe_every_byte(void **state) {
  for (int c = 1; c < 256; c++) {
    char arg[2] = {(char)c, '\0'};
    char want[32];
    size_t n = chat_sanitize(arg, 1, want, sizeof(want) - 1);

    want[n] = '\n';
    want[n + 1] = '\0';
    assert_safe(chat_format_safe("%s", arg), want);
  }
}

/* Results longer than the stack buffer take the heap path. */
static void test_format_safe_long_result(void **state) {
  enum { N = 5000 };
  char *arg = malloc(N + 1);
  char *want = malloc(2 * N + 2);
  chat_buf_t *b;

  assert_non_null(arg);
  assert_non_null(want);
  for (size_t i = 0, o = 0; i < N; i++) {
    arg[i] = i % 2 ? '\x1b' : 'x';
    if (i % 2) {
      want[o++] = '^';
      want[o++] = '[';
    } else {
      want[o++] = 'x';
    }
    if (i == N - 1) {
      want[o++] = '\n';
      want[o] = '\0';
    }
  }
  arg[N] = '\0';
  b = chat_format_safe("%s", arg);
  assert_safe(b, want);
  free(arg);
  free(want);
}

static void test_safe_line_keeps_nul_visible(void **state) {
  assert_safe(chat_safe_line(S("a\0b\x1b")), "a^@b^[\n");
  assert_safe(chat_safe_line("", 0), "\n");
}

static void test_sanitize_every_single_byte(void **state) {
  for (int c = 0; c < 256; c++) {
    char in = (char)c;
    char want[16];

    if (c == '\t' || (c >= 0x20 && c < 0x7f))
      snprintf(want, sizeof(want), "%c", c);
    else if (c < 0x20)
      snprintf(want, sizeof(want), "^%c", c + 0x40);
    else if (c == 0x7f)
      snprintf(want, sizeof(want), "^?");
    else
      snprintf(want, sizeof(want), "\\x%02x", c);
    assert_sanitized(&in, 1, want);
  }
}

static void test_sanitize_empty(void **state) {
  char out[1] = {'#'};

  assert_int_equal(chat_sanitize("", 0, out, sizeof(out)), 0);
  assert_int_equal(out[0], '\0');
}

/* Input tokens and where each one's output ends: truncation may only cut at
 * these points. */
static const char trunc_in[] = "a\x1b"
                               "b\xff\xc3\xa9\xc2\x9b\xe2\x80\xae\x7f";
static const char trunc_out[] = "a^[b\\xff\xc3\xa9\\u009b\\u202e^?";
static const size_t trunc_ends[] = {0, 1, 3, 4, 8, 10, 16, 22, 24};

static void test_sanitize_truncates_between_escapes(void **state) {
  enum { CANARY = 0x5a };
  size_t full = sizeof(trunc_out) - 1;

  assert_int_equal(trunc_ends[sizeof(trunc_ends) / sizeof(trunc_ends[0]) - 1],
                   full);
  for (size_t cap = 1; cap <= full + 2; cap++) {
    unsigned char buf[64];
    size_t want = 0;
    size_t n;

    for (size_t i = 0; i < sizeof(trunc_ends) / sizeof(trunc_ends[0]); i++)
      if (trunc_ends[i] <= cap - 1)
        want = trunc_ends[i];
    memset(buf, CANARY, sizeof(buf));
    n = chat_sanitize(trunc_in, sizeof(trunc_in) - 1, (char *)buf, cap);
    if (n != want) {
      print_error("cap %zu: wrote %zu bytes, want %zu\n", cap, n, want);
      fail();
    }
    assert_memory_equal(buf, trunc_out, n);
    assert_int_equal(buf[n], '\0');
    for (size_t i = cap; i < sizeof(buf); i++)
      assert_int_equal(buf[i], CANARY);
  }
}

static void test_sanitize_cap_one_gives_empty_string(void **state) {
  char out[2] = {'#', '#'};

  assert_int_equal(chat_sanitize(S("\xff\xff"), out, 1), 0);
  assert_int_equal(out[0], '\0');
  assert_int_equal(out[1], '#');
}

static void test_sanitize_max_fits_worst_case(void **state) {
  enum { N = 100 };
  char in[N];
  char *out = malloc(CHAT_SANITIZE_MAX(N));

  assert_non_null(out);
  memset(in, '\xff', N);
  assert_int_equal(chat_sanitize(in, N, out, CHAT_SANITIZE_MAX(N)), 4 * N);
  assert_int_equal(out[4 * N], '\0');
  for (size_t i = 0; i < N; i++)
    assert_memory_equal(out + 4 * i, "\\xff", 4);
  free(out);
}

static uint32_t rng_state = 0x12345678u;

static uint32_t rng(void) {
  /* xorshift32: deterministic, so a failure reproduces. */
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 17;
  rng_state ^= rng_state << 5;
  return rng_state;
}

static size_t put_utf8(char *p, uint32_t cp) {
  if (cp < 0x80) {
    p[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    p[0] = (char)(0xc0 | (cp >> 6));
    p[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    p[0] = (char)(0xe0 | (cp >> 12));
    p[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    p[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  p[0] = (char)(0xf0 | (cp >> 18));
  p[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  p[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
  p[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

/* Random bytes, mixed with encoded code points (C1 and bidi controls among
 * them) so that valid sequences are common too. */
static size_t random_text(char *p, size_t max) {
  static const uint32_t special[] = {
      0x85,   0x9b,   0xad,   0x61c,  0x200b, 0x200f, 0x2028, 0x2029,  0x202a,
      0x202e, 0x2060, 0x2064, 0x2066, 0xd7ff, 0xe000, 0xfeff, 0x10ffff};
  size_t len = 0;
  size_t want = rng() % max;

  while (len + 4 <= want) {
    uint32_t r = rng();

    switch (r % 4) {
    case 0:
      p[len++] = (char)(r >> 8);
      break;
    case 1:
      p[len++] = (char)(0x20 + (r >> 8) % 0x60);
      break;
    case 2:
      p[len++] = (char)((r >> 8) % 0x20);
      break;
    default: {
      uint32_t cp = (r >> 8) % 0x110000;
      if (r & 0x80)
        cp = special[(r >> 8) % (sizeof(special) / sizeof(special[0]))];
      if (cp >= 0xd800 && cp < 0xe000)
        cp = 0xfffd;
      len += put_utf8(p + len, cp);
    }
    }
  }
  return len;
}

/* The Arabic letter mark (a bidi control), the soft hyphen, the line and
 * paragraph separators, the word joiner and the invisible operators print
 * escaped: at the start, inside and at the end of a text; their encoding
 * cut at each byte boundary is invalid UTF-8 and escaped byte by byte; their
 * neighbours pass. */
static void test_sanitize_escapes_more_deceptive(void **state) {
  static const uint32_t cps[] = {0xad,   0x61c,  0x2028, 0x2029, 0x2060,
                                 0x2061, 0x2062, 0x2063, 0x2064};
  static const uint32_t ok[] = {0xac,   0xae,   0x61b,  0x61d,
                                0x2027, 0x205f, 0x2065, 0x202f};
  static const char base[] = "name";
  char in[32], want[64], enc[4], shown[8];

  for (size_t i = 0; i < sizeof(cps) / sizeof(cps[0]); i++) {
    size_t n = put_utf8(enc, cps[i]);

    snprintf(shown, sizeof(shown), "\\u%04x", (unsigned)cps[i]);
    for (size_t at = 0; at <= sizeof(base) - 1; at++) {
      memcpy(in, base, at);
      memcpy(in + at, enc, n);
      memcpy(in + at + n, base + at, sizeof(base) - 1 - at);
      snprintf(want, sizeof(want), "%.*s%s%s", (int)at, base, shown, base + at);
      assert_sanitized(in, sizeof(base) - 1 + n, want);
    }
    for (size_t cut = 1; cut < n; cut++) {
      size_t w = 1;
      in[0] = 'a';
      memcpy(in + 1, enc, cut);
      in[1 + cut] = 'b';
      want[0] = 'a';
      for (size_t k = 0; k < cut; k++)
        w += (size_t)snprintf(want + w, sizeof(want) - w, "\\x%02x",
                              (unsigned char)enc[k]);
      snprintf(want + w, sizeof(want) - w, "b");
      assert_sanitized(in, cut + 2, want);
    }
  }
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    size_t n = put_utf8(in, ok[i]);
    memcpy(want, in, n);
    want[n] = '\0';
    assert_sanitized(in, n, want);
  }
}

/* Sanitizing into exactly CHAT_SANITIZE_MAX(len) bytes gives the same output
 * as into a roomy buffer; the exact-size buffer is on the heap so that ASan
 * and valgrind see any overflow. The output is always acceptable text. */
static void check_sanitize_max(const char *in, size_t len) {
  size_t cap = CHAT_SANITIZE_MAX(len);
  char *exact = malloc(cap);
  char *roomy = malloc(cap * 2 + 16);
  size_t n;

  assert_non_null(exact);
  assert_non_null(roomy);
  n = chat_sanitize(in, len, exact, cap);
  assert_true(n < cap);
  assert_true(n >= len);
  assert_int_equal(exact[n], '\0');
  assert_int_equal(strlen(exact), n);
  assert_int_equal(chat_sanitize(in, len, roomy, cap * 2 + 16), n);
  assert_memory_equal(exact, roomy, n + 1);
  if (n > 0)
    assert_int_equal(chat_text_check(exact, n), 0);
  free(exact);
  free(roomy);
}

static void test_sanitize_max_is_always_enough(void **state) {
  char in[80];

  for (int c = 0; c < 256; c++) {
    in[0] = (char)c;
    check_sanitize_max(in, 1);
  }
  for (int i = 0; i < 5000; i++)
    check_sanitize_max(in, random_text(in, sizeof(in)));
}

/* ---- line parsing --------------------------------------------------- */

static void assert_parsed(const char *line, size_t len, chat_line_kind kind,
                          const char *word, const char *text) {
  chat_line_t out;

  memset(&out, 0, sizeof(out));
  assert_int_equal(chat_line_parse(line, len, &out), 0);
  assert_int_equal(out.kind, kind);
  if (word != NULL) {
    assert_int_equal(out.word_len, strlen(word));
    assert_memory_equal(out.word, word, out.word_len);
    assert_true(out.word >= line && out.word + out.word_len <= line + len);
  }
  assert_int_equal(out.text_len, strlen(text));
  if (out.text_len > 0) {
    assert_memory_equal(out.text, text, out.text_len);
    assert_true(out.text >= line && out.text + out.text_len <= line + len);
  }
}

static void assert_invalid_line(const char *line, size_t len) {
  chat_line_t out;

  memset(&out, 0, sizeof(out));
  out.kind = CHAT_LINE_CHAT;
  if (chat_line_parse(line, len, &out) != CHAT_EPROTO) {
    print_error("accepted invalid line \"%.*s\"\n", (int)len, line);
    fail();
  }
  assert_int_equal(out.kind, CHAT_LINE_INVALID);
}

static void test_parse_chat_line(void **state) {
  static const char line[] = "alice: hi";
  chat_line_t out;

  assert_parsed(S("alice: hi"), CHAT_LINE_CHAT, "alice", "hi");
  assert_parsed(S("alice: "), CHAT_LINE_CHAT, "alice", "");
  assert_parsed(S("Bob.2: a: b"), CHAT_LINE_CHAT, "Bob.2", "a: b");
  assert_parsed(S("x:  two spaces"), CHAT_LINE_CHAT, "x", " two spaces");

  assert_int_equal(chat_line_parse(S(line), &out), 0);
  assert_ptr_equal(out.word, line);
  assert_ptr_equal(out.text, line + 7);
}

static void test_parse_notice_line(void **state) {
  assert_parsed(S("* bob joined"), CHAT_LINE_NOTICE, NULL, "bob joined");
}

static void test_parse_error_line(void **state) {
  assert_parsed(S("! name-taken the name is taken"), CHAT_LINE_ERROR,
                "name-taken", "the name is taken");
}

static void test_parse_control_line(void **state) {
  assert_parsed(S("\x01"
                  "XFER 1 2"),
                CHAT_LINE_CONTROL, "XFER", "1 2");
  assert_parsed(S("\x01"
                  "PING"),
                CHAT_LINE_CONTROL, "PING", "");
}

static void test_parse_rejects_invalid_lines(void **state) {
  assert_invalid_line("", 0);
  assert_invalid_line(S("alice:hi"));
  assert_invalid_line(S("bad name: x"));
  assert_invalid_line(S("a b: c"));
  assert_invalid_line(S("?x"));
}

/* ---- formatting ----------------------------------------------------- */

static void assert_buf(chat_buf_t *b, const char *want, size_t want_len) {
  assert_non_null(b);
  assert_int_equal(b->len, want_len);
  assert_memory_equal(b->data, want, want_len);
  chat_buf_unref(b);
}

static void test_format_chat(void **state) {
  assert_buf(chat_format_chat(S("alice"), S("hi")), S("alice: hi\n"));
  assert_buf(chat_format_chat(S("bob"), S("h\xc3\xa9")), S("bob: h\xc3\xa9\n"));
  /* Only len bytes of each argument count. */
  assert_buf(chat_format_chat("carolXX", 5, "yo!!", 2), S("carol: yo\n"));
}

static void test_format_notice(void **state) {
  assert_buf(chat_format_notice("%s", "x"), S("* x\n"));
  assert_buf(chat_format_notice("%s joined (%d online)", "bob", 3),
             S("* bob joined (3 online)\n"));
}

static void test_format_error(void **state) {
  assert_buf(chat_format_error("code", "%s", "text"), S("! code text\n"));
  assert_buf(chat_format_error("name-taken", "the name %s is taken", "bob"),
             S("! name-taken the name bob is taken\n"));
}

static void test_format_control(void **state) {
  assert_buf(chat_format_control("VERB", "%s", "args"), S("\x01"
                                                          "VERB args\n"));
  assert_buf(chat_format_control("XFER", "%d %d", 1, 2), S("\x01"
                                                           "XFER 1 2\n"));
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-zero-length"
#endif
  assert_buf(chat_format_control("VERB", ""), S("\x01"
                                                "VERB\n"));
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC diagnostic pop
#endif
}

static void test_formatted_lines_parse_back(void **state) {
  chat_buf_t *b = chat_format_error("slow", "%s", "queue full");
  chat_line_t out;

  assert_non_null(b);
  assert_int_equal(chat_line_parse(b->data, b->len - 1, &out), 0);
  assert_int_equal(out.kind, CHAT_LINE_ERROR);
  assert_int_equal(out.word_len, 4);
  assert_memory_equal(out.word, "slow", 4);
  chat_buf_unref(b);

  b = chat_format_control("XFER", "%s", "a b");
  assert_non_null(b);
  assert_int_equal(chat_line_parse(b->data, b->len - 1, &out), 0);
  assert_int_equal(out.kind, CHAT_LINE_CONTROL);
  assert_int_equal(out.text_len, 3);
  assert_memory_equal(out.text, "a b", 3);
  chat_buf_unref(b);
}

static chat_buf_t *call_vprintf(const char *fmt, ...) CHAT_PRINTF(1, 2);

static chat_buf_t *call_vprintf(const char *fmt, ...) {
  va_list ap;
  chat_buf_t *b;

  va_start(ap, fmt);
  b = chat_buf_vprintf(fmt, ap);
  va_end(ap);
  return b;
}

static void test_buf_vprintf(void **state) {
  enum { N = 10000 };
  char *big = malloc(N + 1);
  char *want = malloc(N + 2);

  assert_buf(call_vprintf("%d-%s", 42, "x"), S("42-x"));
  assert_buf(call_vprintf("%s", ""), "", 0);

  /* Longer than any sensible first guess at the size. */
  assert_non_null(big);
  assert_non_null(want);
  memset(big, 'q', N);
  big[N] = '\0';
  want[0] = '<';
  memcpy(want + 1, big, N);
  want[N + 1] = '>';
  assert_buf(call_vprintf("<%s>", big), want, N + 2);
  free(want);
  free(big);
}

/* ---- errors --------------------------------------------------------- */

static const struct {
  int code;
  const char *name;
  const char *msg;
} chat_errors[] = {
#define XX(name, off, msg) {CHAT_##name, "CHAT_" #name, msg},
    CHAT_ERRNO_MAP(XX)
#undef XX
};

#define N_ERRORS (sizeof(chat_errors) / sizeof(chat_errors[0]))

static void test_strerror_explains_every_chat_code(void **state) {
  for (size_t i = 0; i < N_ERRORS; i++) {
    const char *s = chat_strerror(chat_errors[i].code);

    assert_non_null(s);
    assert_true(s[0] != '\0');
    assert_string_not_equal(s, "unknown error");
    assert_string_equal(s, chat_errors[i].msg);
    for (size_t j = 0; j < i; j++)
      assert_string_not_equal(s, chat_strerror(chat_errors[j].code));
  }
}

static void test_err_name_of_every_chat_code(void **state) {
  assert_string_equal(chat_err_name(CHAT_ELINE), "CHAT_ELINE");
  for (size_t i = 0; i < N_ERRORS; i++)
    assert_string_equal(chat_err_name(chat_errors[i].code),
                        chat_errors[i].name);
}

static void test_strerror_passes_libuv_codes(void **state) {
  assert_string_equal(chat_strerror(UV_ECONNREFUSED),
                      uv_strerror(UV_ECONNREFUSED));
  assert_string_equal(chat_strerror(UV_ENOMEM), uv_strerror(UV_ENOMEM));
  assert_string_equal(chat_err_name(UV_ECONNREFUSED), "ECONNREFUSED");
  assert_string_equal(chat_err_name(UV_EOF), "EOF");
}

static void test_chat_codes_do_not_collide_with_libuv(void **state) {
  for (size_t i = 0; i < N_ERRORS; i++)
    assert_true(chat_errors[i].code <= CHAT__ERRNO_BASE - 1);
  assert_true(UV_ECONNREFUSED > CHAT__ERRNO_BASE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_name_check_accepts_valid_names),
      cmocka_unit_test(test_name_check_rejects_invalid_names),
      cmocka_unit_test(test_name_check_every_byte),
      cmocka_unit_test(test_name_equal_ignores_ascii_case),
      cmocka_unit_test(test_name_equal_is_length_sensitive),
      cmocka_unit_test(test_name_equal_folds_letters_only),
      cmocka_unit_test(test_text_check_accepts_valid_text),
      cmocka_unit_test(test_text_check_empty),
      cmocka_unit_test(test_text_check_rejects_controls),
      cmocka_unit_test(test_text_check_rejects_c1_controls),
      cmocka_unit_test(test_text_check_rejects_invalid_utf8),
      cmocka_unit_test(test_sanitize_caret_notation),
      cmocka_unit_test(test_sanitize_keeps_tab_and_utf8),
      cmocka_unit_test(test_sanitize_escapes_invalid_bytes),
      cmocka_unit_test(test_sanitize_escapes_c1_and_bidi),
      cmocka_unit_test(test_sanitize_escapes_invisible_characters),
      cmocka_unit_test(test_sanitize_escapes_more_deceptive),
      cmocka_unit_test(test_sanitize_is_idempotent),
      cmocka_unit_test(test_format_safe_neutralises_every_argument),
      cmocka_unit_test(test_format_safe_every_byte),
      cmocka_unit_test(test_format_safe_long_result),
      cmocka_unit_test(test_safe_line_keeps_nul_visible),
      cmocka_unit_test(test_sanitize_every_single_byte),
      cmocka_unit_test(test_sanitize_empty),
      cmocka_unit_test(test_sanitize_truncates_between_escapes),
      cmocka_unit_test(test_sanitize_cap_one_gives_empty_string),
      cmocka_unit_test(test_sanitize_max_fits_worst_case),
      cmocka_unit_test(test_sanitize_max_is_always_enough),
      cmocka_unit_test(test_parse_chat_line),
      cmocka_unit_test(test_parse_notice_line),
      cmocka_unit_test(test_parse_error_line),
      cmocka_unit_test(test_parse_control_line),
      cmocka_unit_test(test_parse_rejects_invalid_lines),
      cmocka_unit_test(test_format_chat),
      cmocka_unit_test(test_format_notice),
      cmocka_unit_test(test_format_error),
      cmocka_unit_test(test_format_control),
      cmocka_unit_test(test_formatted_lines_parse_back),
      cmocka_unit_test(test_buf_vprintf),
      cmocka_unit_test(test_strerror_explains_every_chat_code),
      cmocka_unit_test(test_err_name_of_every_chat_code),
      cmocka_unit_test(test_strerror_passes_libuv_codes),
      cmocka_unit_test(test_chat_codes_do_not_collide_with_libuv),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
