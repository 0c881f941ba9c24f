/* Unit tests of the file-transfer pure helpers (include/chat/xfer.h):
 * file names, tokens, decimal numbers, control-line arguments and the
 * file-connection header lines (docs/PROTOCOL.md, "The file connection"). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/error.h"
#include "chat/xfer.h"

#define S(lit) (lit), (sizeof(lit) - 1)

/* A valid token and the request line that carries it. */
#define TOKEN "0123456789abcdef0123456789abcdef"
#define REQUEST "CHATFILE 1 " TOKEN

/* Asserts that field i of a chat_args_split result is the string want. */
static void assert_field(const char *const *field, const size_t *field_len,
                         int i, const char *want) {
  assert_int_equal(field_len[i], strlen(want));
  assert_memory_equal(field[i], want, field_len[i]);
}

/* ---- file names ----------------------------------------------------- */

static void test_filename_check_accepts_valid_names(void **state) {
  char max[CHAT_FILENAME_MAX];

  assert_int_equal(chat_filename_check(S("a")), 0);
  assert_int_equal(chat_filename_check(S("notes.txt")), 0);
  assert_int_equal(chat_filename_check(S("my file \xc3\xa9.txt")), 0);
  assert_int_equal(chat_filename_check(S("x..y")), 0);
  assert_int_equal(chat_filename_check(S("a.")), 0);
  assert_int_equal(chat_filename_check(S("\xe2\x82\xac")), 0);     /* U+20AC */
  assert_int_equal(chat_filename_check(S("\xf0\x9f\x98\x80")), 0); /* emoji */

  memset(max, 'x', sizeof(max));
  assert_int_equal(sizeof(max), 255);
  assert_int_equal(chat_filename_check(max, sizeof(max)), 0);
}

static void test_filename_check_rejects_bad_length(void **state) {
  char big[CHAT_FILENAME_MAX + 1];

  assert_int_equal(chat_filename_check("", 0), CHAT_EFILENAME);
  memset(big, 'x', sizeof(big));
  assert_int_equal(sizeof(big), 256);
  assert_int_equal(chat_filename_check(big, sizeof(big)), CHAT_EFILENAME);
}

static void test_filename_check_rejects_dot_names_and_paths(void **state) {
  static const char *const bad[] = {
      ".",    "..", ".hidden", "../x", "a/b", "/etc/hostname",
      "a\\b", "/",  "\\",      "a/",   "./a", ".a.part-XXXXXX",
  };

  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(chat_filename_check(bad[i], strlen(bad[i])),
                     CHAT_EFILENAME);
}

static void test_filename_check_rejects_control_characters(void **state) {
  static const char *const bad[] = {
      "a\tb",
      "a\x1b[31m",
      "a\x7f",
      "\n",
      "a\nb",
      "a\rb",
      "\x01",
      ("a\xc2\x85"
       "b"),      /* U+0085 NEL (C1) */
      "\xc2\x9f", /* U+009F (C1) */
      "\xc2\x80", /* U+0080 (C1) */
  };

  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(chat_filename_check(bad[i], strlen(bad[i])),
                     CHAT_EFILENAME);
  /* NUL inside the name, counted in len. */
  assert_int_equal(chat_filename_check(S("a\0b")), CHAT_EFILENAME);
  assert_int_equal(chat_filename_check(S("ab\0")), CHAT_EFILENAME);
  assert_int_equal(chat_filename_check(S("\0")), CHAT_EFILENAME);
}

static void test_filename_check_rejects_invalid_utf8(void **state) {
  static const char *const bad[] = {
      "a\xff",     /* never valid */
      "\xc0\xaf",  /* overlong '/' */
      "a\xe2\x82", /* truncated U+20AC */
      ("\xe2\x82"
       "b"),              /* truncated, then ASCII */
      "\x80",             /* lone continuation */
      "\xed\xa0\x80",     /* surrogate U+D800 */
      "\xf4\x90\x80\x80", /* above U+10FFFF */
      "\xe0\x80\xaf",     /* overlong, three bytes */
  };

  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(chat_filename_check(bad[i], strlen(bad[i])),
                     CHAT_EFILENAME);
  /* A valid sequence cut by len. */
  assert_int_equal(chat_filename_check("\xc3\xa9", 1), CHAT_EFILENAME);
}

/* Encodes cp (not a surrogate) as UTF-8; returns its length. */
static size_t utf8(char *p, unsigned cp) {
  if (cp < 0x80) {
    p[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    p[0] = (char)(0xc0 | cp >> 6);
    p[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    p[0] = (char)(0xe0 | cp >> 12);
    p[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    p[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  p[0] = (char)(0xf0 | cp >> 18);
  p[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  p[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
  p[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

/* Bidirectional controls, invisible characters and line separators: the
 * name shown would not be the name served. */
static const unsigned deceptive[] = {
    0x00ad, 0x061c, 0x200b, 0x200c, 0x200d, 0x200e, 0x200f, 0x2028,
    0x2029, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2060, 0x2061,
    0x2062, 0x2063, 0x2064, 0x2066, 0x2067, 0x2068, 0x2069, 0xfeff,
};

static void test_filename_check_rejects_deceptive_characters(void **state) {
  static const char base[] = "report.txt";
  char name[CHAT_FILENAME_MAX + 8];

  for (size_t i = 0; i < sizeof(deceptive) / sizeof(deceptive[0]); i++) {
    char enc[4];
    size_t n = utf8(enc, deceptive[i]);

    /* At every byte offset of an ordinary name: first, inside, last. */
    for (size_t at = 0; at <= sizeof(base) - 1; at++) {
      memcpy(name, base, at);
      memcpy(name + at, enc, n);
      memcpy(name + at + n, base + at, sizeof(base) - 1 - at);
      if (chat_filename_check(name, sizeof(base) - 1 + n) != CHAT_EFILENAME) {
        print_error("accepted U+%04X at offset %zu\n", deceptive[i], at);
        fail();
      }
    }
    /* Alone, and as the last character of a name of the longest length. */
    assert_int_equal(chat_filename_check(enc, n), CHAT_EFILENAME);
    memset(name, 'a', CHAT_FILENAME_MAX - n);
    memcpy(name + CHAT_FILENAME_MAX - n, enc, n);
    assert_int_equal(chat_filename_check(name, CHAT_FILENAME_MAX),
                     CHAT_EFILENAME);
    /* Its encoding cut at each byte boundary is invalid UTF-8. */
    for (size_t cut = 1; cut < n; cut++) {
      memcpy(name, "a", 1);
      memcpy(name + 1, enc, cut);
      assert_int_equal(chat_filename_check(name, 1 + cut), CHAT_EFILENAME);
    }
  }
}

static void test_filename_check_accepts_neighbours_of_deceptive(void **state) {
  static const unsigned ok[] = {0x00ac, 0x00ae, 0x061b, 0x061d, 0x200a,
                                0x2010, 0x2027, 0x202f, 0x205f, 0x2065,
                                0x206a, 0xfefe, 0xff00};
  char name[8];

  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    size_t n = utf8(name + 1, ok[i]);
    name[0] = 'a';
    if (chat_filename_check(name, 1 + n) != 0) {
      print_error("refused U+%04X\n", ok[i]);
      fail();
    }
  }
}

/* Every code point outside the refused ranges decides the same as before:
 * as chat text, alone in a name. */
static void test_filename_check_every_code_point(void **state) {
  char name[8];

  for (unsigned cp = 0x20; cp <= 0x10ffff; cp++) {
    int refused;
    size_t n;

    if (cp >= 0xd800 && cp <= 0xdfff)
      continue;
    name[0] = 'a';
    n = utf8(name + 1, cp);
    refused =
        cp == 0x7f || (cp >= 0x80 && cp < 0xa0) || cp == '/' || cp == '\\' ||
        cp == 0x00ad || cp == 0x061c || (cp >= 0x200b && cp <= 0x200f) ||
        (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x2064) ||
        (cp >= 0x2066 && cp <= 0x2069) || cp == 0xfeff;
    if ((chat_filename_check(name, 1 + n) != 0) != refused) {
      print_error("U+%04X: %s\n", cp, refused ? "accepted" : "refused");
      fail();
    }
  }
}

/* ---- temporary names ------------------------------------------------ */

/* "." + prefix + ".part-XXXXXX" fits in 255 bytes and cuts no character. */
static void assert_part_len(const char *name, size_t len, size_t want) {
  size_t n = chat_part_name_len(name, len);

  if (n != want) {
    print_error("length %zu: prefix %zu, want %zu\n", len, n, want);
    fail();
  }
  assert_true(1 + n + sizeof(CHAT_PART_SUFFIX) - 1 <= CHAT_FILENAME_MAX);
  assert_true(n == len || ((unsigned char)name[n] & 0xc0) != 0x80);
}

static void test_part_name_len_ascii_every_length(void **state) {
  char name[CHAT_FILENAME_MAX];

  memset(name, 'n', sizeof(name));
  for (size_t len = 1; len <= CHAT_FILENAME_MAX; len++)
    assert_part_len(name, len, len <= 242 ? len : 242);
}

static void test_part_name_len_cuts_on_character_boundary(void **state) {
  char name[CHAT_FILENAME_MAX + 4];
  size_t len;

  /* 127 x U+00E9 + "x": byte 242 starts a character, so 242 stay. */
  for (len = 0; len < 254; len += 2)
    memcpy(name + len, "\xc3\xa9", 2);
  name[len++] = 'x';
  assert_part_len(name, len, 242);
  /* "x" + 127 x U+00E9: byte 242 is a continuation byte, so 241 stay. */
  name[0] = 'x';
  for (len = 1; len < 255; len += 2)
    memcpy(name + len, "\xc3\xa9", 2);
  assert_part_len(name, len, 241);
  /* Four-byte characters behind 0-3 ASCII bytes: every alignment. */
  for (size_t k = 0; k < 4; k++) {
    memset(name, 'a', k);
    for (len = k; len + 4 <= CHAT_FILENAME_MAX; len += 4)
      memcpy(name + len, "\xf0\x9f\x98\x80", 4);
    assert_part_len(name, len, k + (242 - k) / 4 * 4);
  }
  /* Three-byte characters: the shortest name that needs a cut. */
  for (len = 0; len < 243; len += 3)
    memcpy(name + len, "\xe2\x82\xac", 3);
  assert_part_len(name, len, 240);
}

/* ---- tokens --------------------------------------------------------- */

static int cmp_token(const void *a, const void *b) {
  return memcmp(a, b, CHAT_TOKEN_LEN + 1);
}

static void test_token_new_gives_lower_hex(void **state) {
  char tok[CHAT_TOKEN_LEN + 2];

  memset(tok, 'Z', sizeof(tok));
  assert_int_equal(chat_token_new(tok), 0);
  assert_int_equal(tok[CHAT_TOKEN_LEN], '\0');
  assert_int_equal(tok[CHAT_TOKEN_LEN + 1], 'Z'); /* nothing written past */
  assert_int_equal(strlen(tok), CHAT_TOKEN_LEN);
  assert_int_equal(CHAT_TOKEN_LEN, 2 * CHAT_TOKEN_BYTES);
  for (size_t i = 0; i < CHAT_TOKEN_LEN; i++)
    assert_non_null(strchr("0123456789abcdef", tok[i]));
  assert_int_equal(chat_token_check(tok, CHAT_TOKEN_LEN), 0);
}

static void test_token_new_does_not_repeat(void **state) {
  enum { N = 1000 };
  char(*tok)[CHAT_TOKEN_LEN + 1] = malloc(N * sizeof(*tok));

  assert_non_null(tok);
  for (size_t i = 0; i < N; i++) {
    assert_int_equal(chat_token_new(tok[i]), 0);
    assert_int_equal(chat_token_check(tok[i], strlen(tok[i])), 0);
  }
  assert_false(chat_token_equal(tok[0], tok[1]));
  qsort(tok, N, sizeof(*tok), cmp_token);
  for (size_t i = 1; i < N; i++)
    assert_int_not_equal(memcmp(tok[i - 1], tok[i], CHAT_TOKEN_LEN), 0);
  free(tok);
}

static void test_token_check_accepts_lower_hex(void **state) {
  assert_int_equal(chat_token_check(S(TOKEN)), 0);
  assert_int_equal(chat_token_check(S("ffffffffffffffffffffffffffffffff")), 0);
  assert_int_equal(chat_token_check(S("00000000000000000000000000000000")), 0);
}

static void test_token_check_rejects_bad_tokens(void **state) {
  assert_int_equal(chat_token_check("", 0), CHAT_EPROTO);
  assert_int_equal(chat_token_check(S("0123456789abcdef0123456789abcde")),
                   CHAT_EPROTO); /* 31 */
  assert_int_equal(chat_token_check(S("0123456789abcdef0123456789abcdef0")),
                   CHAT_EPROTO); /* 33 */
  assert_int_equal(chat_token_check(S("0123456789ABCDEF0123456789abcdef")),
                   CHAT_EPROTO);
  assert_int_equal(chat_token_check(S("0123456789abcdef0123456789abcdeF")),
                   CHAT_EPROTO);
  assert_int_equal(chat_token_check(S("g123456789abcdef0123456789abcdef")),
                   CHAT_EPROTO);
  assert_int_equal(chat_token_check(S("0123456789abcdef0123456789abcde ")),
                   CHAT_EPROTO);
  assert_int_equal(chat_token_check(S("0123456789abcdef\0"
                                      "123456789abcdef")),
                   CHAT_EPROTO);
}

/* Every byte other than 0-9 a-f is refused at every position. */
static void test_token_check_every_byte(void **state) {
  for (int c = 0; c < 256; c++) {
    int ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');

    for (size_t pos = 0; pos < CHAT_TOKEN_LEN; pos += CHAT_TOKEN_LEN - 1) {
      char tok[] = TOKEN;

      tok[pos] = (char)c;
      assert_int_equal(chat_token_check(tok, CHAT_TOKEN_LEN),
                       ok ? 0 : CHAT_EPROTO);
    }
  }
}

static void test_token_equal(void **state) {
  char a[] = TOKEN, b[] = TOKEN;

  assert_true(chat_token_equal(a, b));
  b[0] = '1';
  assert_false(chat_token_equal(a, b));
  b[0] = a[0];
  b[CHAT_TOKEN_LEN - 1] = 'e';
  assert_false(chat_token_equal(a, b));
  b[CHAT_TOKEN_LEN - 1] = a[CHAT_TOKEN_LEN - 1];
  b[CHAT_TOKEN_LEN / 2] = 'a';
  assert_false(chat_token_equal(a, b));
  b[CHAT_TOKEN_LEN / 2] = a[CHAT_TOKEN_LEN / 2];
  assert_true(chat_token_equal(a, b));
}

/* ---- decimal numbers ------------------------------------------------ */

static void test_parse_u64_accepts_numbers(void **state) {
  uint64_t v = 77;

  assert_int_equal(chat_parse_u64(S("0"), 20, &v), 0);
  assert_true(v == 0);
  assert_int_equal(chat_parse_u64(S("1"), 20, &v), 0);
  assert_true(v == 1);
  assert_int_equal(chat_parse_u64(S("1234567890"), 20, &v), 0);
  assert_true(v == 1234567890u);
  assert_int_equal(chat_parse_u64(S("18446744073709551615"), 20, &v), 0);
  assert_true(v == UINT64_MAX);
  assert_int_equal(chat_parse_u64(S("9223372036854775807"), 19, &v), 0);
  assert_true(v == (uint64_t)INT64_MAX);
  /* len is the whole number: bytes after it are not read. */
  assert_int_equal(chat_parse_u64("12x", 2, 20, &v), 0);
  assert_true(v == 12);
}

static void test_parse_u64_rejects_overflow(void **state) {
  uint64_t v = 77;

  assert_int_equal(chat_parse_u64(S("18446744073709551616"), 20, &v),
                   CHAT_EPROTO);
  assert_int_equal(chat_parse_u64(S("18446744073709551620"), 20, &v),
                   CHAT_EPROTO);
  assert_int_equal(chat_parse_u64(S("99999999999999999999"), 20, &v),
                   CHAT_EPROTO);
  assert_int_equal(chat_parse_u64(S("99999999999999999999"), 25, &v),
                   CHAT_EPROTO);
  assert_int_equal(chat_parse_u64(S("100000000000000000000"), 25, &v),
                   CHAT_EPROTO);
  assert_true(v == 77);
}

static void test_parse_u64_rejects_junk(void **state) {
  static const char *const bad[] = {
      "01", "00", "+1", "-1", " 1", "1 ", "", "1a", "a", "0x1", "1.0", "1,0",
  };
  uint64_t v = 77;

  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(chat_parse_u64(bad[i], strlen(bad[i]), 20, &v),
                     CHAT_EPROTO);
  assert_int_equal(chat_parse_u64(S("1\0"), 20, &v), CHAT_EPROTO);
  assert_true(v == 77);
}

static void test_parse_u64_respects_max_digits(void **state) {
  uint64_t v = 77;

  assert_int_equal(chat_parse_u64(S("123"), 3, &v), 0);
  assert_true(v == 123);
  assert_int_equal(chat_parse_u64(S("1234"), 3, &v), CHAT_EPROTO);
  assert_int_equal(chat_parse_u64(S("1"), 1, &v), 0);
  assert_true(v == 1);
  assert_int_equal(chat_parse_u64(S("10"), 1, &v), CHAT_EPROTO);
  assert_int_equal(chat_parse_u64(S("0"), 0, &v), CHAT_EPROTO);
  assert_int_equal(chat_parse_u64(S("18446744073709551615"), 19, &v),
                   CHAT_EPROTO);
}

/* ---- control-line arguments ----------------------------------------- */

static void test_args_split_exact_fields(void **state) {
  const char *f[4];
  size_t fl[4];

  assert_int_equal(chat_args_split(S("a b c"), 3, 0, f, fl), 3);
  assert_field(f, fl, 0, "a");
  assert_field(f, fl, 1, "b");
  assert_field(f, fl, 2, "c");
  assert_int_equal(chat_args_split(S("abc"), 1, 0, f, fl), 1);
  assert_field(f, fl, 0, "abc");
  assert_int_equal(chat_args_split(S("one two"), 2, 0, f, fl), 2);
  assert_field(f, fl, 0, "one");
  assert_field(f, fl, 1, "two");
}

static void test_args_split_rest_takes_remainder(void **state) {
  const char *f[4];
  size_t fl[4];
  static const char line[] = "alice 3 my file  name.txt ";

  assert_int_equal(chat_args_split(S("a b c d"), 3, 1, f, fl), 3);
  assert_field(f, fl, 0, "a");
  assert_field(f, fl, 1, "b");
  assert_field(f, fl, 2, "c d");
  assert_int_equal(chat_args_split(S("a b c"), 3, 1, f, fl), 3);
  assert_field(f, fl, 2, "c");
  /* A file name with spaces (double and trailing ones too) as the rest. */
  assert_int_equal(chat_args_split(S(line), 3, 1, f, fl), 3);
  assert_field(f, fl, 0, "alice");
  assert_field(f, fl, 1, "3");
  assert_field(f, fl, 2, "my file  name.txt ");
  assert_ptr_equal(f[0], line);
  /* max 1 with rest: the whole line. */
  assert_int_equal(chat_args_split(S("x y z"), 1, 1, f, fl), 1);
  assert_field(f, fl, 0, "x y z");
  /* The rest keeps its spaces, a leading one included. */
  assert_int_equal(chat_args_split(S("a  b"), 2, 1, f, fl), 2);
  assert_field(f, fl, 0, "a");
  assert_field(f, fl, 1, " b");
  assert_int_equal(chat_args_split(S(" "), 1, 1, f, fl), 1);
  assert_field(f, fl, 0, " ");
}

static void test_args_split_rejects_too_few_fields(void **state) {
  const char *f[4];
  size_t fl[4];

  assert_int_equal(chat_args_split(S("a b"), 3, 0, f, fl), CHAT_EPROTO);
  assert_int_equal(chat_args_split(S("a b"), 3, 1, f, fl), CHAT_EPROTO);
  assert_int_equal(chat_args_split("", 0, 1, 0, f, fl), CHAT_EPROTO);
  assert_int_equal(chat_args_split("", 0, 1, 1, f, fl), CHAT_EPROTO);
  assert_int_equal(chat_args_split(S("a"), 2, 1, f, fl), CHAT_EPROTO);
}

static void test_args_split_rejects_too_many_fields(void **state) {
  const char *f[4];
  size_t fl[4];

  assert_int_equal(chat_args_split(S("a b c d"), 3, 0, f, fl), CHAT_EPROTO);
  assert_int_equal(chat_args_split(S("a b"), 1, 0, f, fl), CHAT_EPROTO);
}

static void test_args_split_rejects_empty_fields(void **state) {
  const char *f[4];
  size_t fl[4];

  assert_int_equal(chat_args_split(S("a  b"), 2, 0, f, fl), CHAT_EPROTO);
  assert_int_equal(chat_args_split(S("a  b"), 3, 0, f, fl), CHAT_EPROTO);
  assert_int_equal(chat_args_split(S("a  b"), 3, 1, f, fl), CHAT_EPROTO);
  assert_int_equal(chat_args_split(S("a b  c"), 3, 0, f, fl), CHAT_EPROTO);
  assert_int_equal(chat_args_split(S(" a b"), 2, 0, f, fl), CHAT_EPROTO);
  assert_int_equal(chat_args_split(S(" a b"), 2, 1, f, fl), CHAT_EPROTO);
  assert_int_equal(chat_args_split(S("a "), 2, 1, f, fl), CHAT_EPROTO);
  assert_int_equal(chat_args_split(S(" "), 1, 0, f, fl), CHAT_EPROTO);
}

/* "a b " splits at single spaces into "a", "b" and "": one field more than
 * max and an empty one, so CHAT_EPROTO on both counts. */
static void test_args_split_rejects_trailing_space(void **state) {
  const char *f[4];
  size_t fl[4];

  assert_int_equal(chat_args_split(S("a b "), 2, 0, f, fl), CHAT_EPROTO);
  assert_int_equal(chat_args_split(S("a "), 1, 0, f, fl), CHAT_EPROTO);
  assert_int_equal(chat_args_split(S("a b c d "), 4, 0, f, fl), CHAT_EPROTO);
}

/* ---- the file-connection request ------------------------------------ */

static void test_parse_request_accepts_valid_line(void **state) {
  char token[CHAT_TOKEN_LEN + 2];

  memset(token, 'Z', sizeof(token));
  assert_int_equal(chat_xfer_parse_request(S(REQUEST), token), 0);
  assert_string_equal(token, TOKEN);
  assert_int_equal(token[CHAT_TOKEN_LEN + 1], 'Z');
  assert_int_equal(strlen(CHAT_XFER_MAGIC " 1 ") + CHAT_TOKEN_LEN,
                   sizeof(REQUEST) - 1);
}

static void test_parse_request_rejects_bad_lines(void **state) {
  static const char *const bad[] = {
      "CHATFILX 1 " TOKEN,
      "chatfile 1 " TOKEN,
      "CHATFILE1 1 " TOKEN,
      "CHATFIL 1 " TOKEN,
      "CHATFILE 2 " TOKEN,
      "CHATFILE 0 " TOKEN,
      "CHATFILE 01 " TOKEN,
      "CHATFILE +1 " TOKEN,
      "CHATFILE 11 " TOKEN,
      "CHATFILE 1",
      "CHATFILE 1 ",
      "CHATFILE " TOKEN,
      "CHATFILE 1 0123456789abcdef0123456789abcde",   /* 31 */
      "CHATFILE 1 0123456789abcdef0123456789abcdef0", /* 33 */
      "CHATFILE 1 0123456789ABCDEF0123456789ABCDEF",
      "CHATFILE 1 g123456789abcdef0123456789abcdef",
      "CHATFILE 1 " TOKEN " x",
      "CHATFILE 1 " TOKEN " " TOKEN,
      "CHATFILE  1 " TOKEN,
      "CHATFILE 1  " TOKEN,
      " CHATFILE 1 " TOKEN,
      "CHATFILE\t1\t" TOKEN,
      "CHATFILE 1 " TOKEN "\n",
      "CHATFILE 1 " TOKEN "\r",
      "",
  };
  char token[CHAT_TOKEN_LEN + 1];

  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(chat_xfer_parse_request(bad[i], strlen(bad[i]), token),
                     CHAT_EPROTO);
  assert_int_equal(chat_xfer_parse_request(S(REQUEST "\0"), token),
                   CHAT_EPROTO);
}

/* The header is "CHATFILE 1 <token>" exactly: a trailing space leaves an
 * empty fourth field. */
static void test_parse_request_rejects_trailing_space(void **state) {
  char token[CHAT_TOKEN_LEN + 1];

  assert_int_equal(chat_xfer_parse_request(S(REQUEST " "), token), CHAT_EPROTO);
}

static void test_parse_request_rejects_long_line(void **state) {
  char line[CHAT_XFER_HEADER_MAX + 2];
  char token[CHAT_TOKEN_LEN + 1];

  /* The valid line followed by junk, up to and past the limit. */
  memset(line, 'x', sizeof(line));
  memcpy(line, REQUEST " ", sizeof(REQUEST));
  assert_int_equal(chat_xfer_parse_request(line, CHAT_XFER_HEADER_MAX, token),
                   CHAT_EPROTO);
  assert_int_equal(
      chat_xfer_parse_request(line, CHAT_XFER_HEADER_MAX + 1, token),
      CHAT_EPROTO);
  assert_int_equal(chat_xfer_parse_request(line, sizeof(line), token),
                   CHAT_EPROTO);
}

static void test_parse_request_every_truncation(void **state) {
  static const char line[] = REQUEST;
  char token[CHAT_TOKEN_LEN + 1];

  for (size_t len = 0; len < sizeof(line) - 1; len++) {
    /* An exact-size heap copy lets valgrind catch any read past len. */
    char *copy = malloc(len ? len : 1);

    assert_non_null(copy);
    memcpy(copy, line, len);
    assert_int_equal(chat_xfer_parse_request(copy, len, token), CHAT_EPROTO);
    free(copy);
  }
  assert_int_equal(chat_xfer_parse_request(line, sizeof(line) - 1, token), 0);
  assert_string_equal(token, TOKEN);
}

/* ---- the owner's reply ---------------------------------------------- */

/* Calls chat_xfer_parse_reply with outputs preset to junk. */
static int parse_reply(const char *line, size_t len, uint64_t *size,
                       const char **code, size_t *code_len, const char **text,
                       size_t *text_len) {
  static const char junk[] = "junk";

  *size = 4242;
  *code = *text = junk;
  *code_len = *text_len = 99;
  return chat_xfer_parse_reply(line, len, size, code, code_len, text, text_len);
}

static void test_parse_reply_ok(void **state) {
  uint64_t size;
  const char *code, *text;
  size_t code_len, text_len;

  assert_int_equal(
      parse_reply(S("OK 0"), &size, &code, &code_len, &text, &text_len), 0);
  assert_true(size == 0);
  assert_int_equal(
      parse_reply(S("OK 123"), &size, &code, &code_len, &text, &text_len), 0);
  assert_true(size == 123);
  assert_int_equal(parse_reply(S("OK 9223372036854775807"), &size, &code,
                               &code_len, &text, &text_len),
                   0);
  assert_true(size == (uint64_t)INT64_MAX);
}

static void test_parse_reply_rejects_bad_ok(void **state) {
  static const char *const bad[] = {
      "OK 9223372036854775808", /* INT64_MAX + 1 */
      "OK 18446744073709551615",
      "OK 99999999999999999999",
      "OK -1",
      "OK +1",
      "OK 01",
      "OK 00",
      "OK ",
      "OK",
      "OK 1 2",
      "OK 1 ",
      "OK  1",
      "OK 1x",
      "OK 0x10",
      "ok 1",
      "Ok 1",
      "OK\t1",
      "OK 1\n",
      " OK 1",
      "OK1",
  };
  uint64_t size;
  const char *code, *text;
  size_t code_len, text_len;

  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(parse_reply(bad[i], strlen(bad[i]), &size, &code,
                                 &code_len, &text, &text_len),
                     CHAT_EPROTO);
}

static void test_parse_reply_err_with_text(void **state) {
  static const char line[] = "ERR bad-token unknown token";
  uint64_t size;
  const char *code, *text;
  size_t code_len, text_len;

  assert_int_equal(
      parse_reply(S(line), &size, &code, &code_len, &text, &text_len),
      CHAT_EREFUSED);
  assert_int_equal(code_len, strlen("bad-token"));
  assert_memory_equal(code, "bad-token", code_len);
  assert_ptr_equal(code, line + 4); /* points into line */
  assert_int_equal(text_len, strlen("unknown token"));
  assert_memory_equal(text, "unknown token", text_len);
  assert_ptr_equal(text, line + 14);
}

static void test_parse_reply_err_without_text(void **state) {
  uint64_t size;
  const char *code, *text;
  size_t code_len, text_len;

  assert_int_equal(
      parse_reply(S("ERR busy"), &size, &code, &code_len, &text, &text_len),
      CHAT_EREFUSED);
  assert_int_equal(code_len, 4);
  assert_memory_equal(code, "busy", 4);
  assert_int_equal(text_len, 0);
}

static void test_parse_reply_rejects_bad_err(void **state) {
  static const char *const bad[] = {
      "ERR", "ERR ", "ERR  busy", "err busy", "ERRbusy", "ERR\tbusy", " ERR x",
  };
  uint64_t size;
  const char *code, *text;
  size_t code_len, text_len;

  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(parse_reply(bad[i], strlen(bad[i]), &size, &code,
                                 &code_len, &text, &text_len),
                     CHAT_EPROTO);
}

static void test_parse_reply_rejects_other_lines(void **state) {
  static const char *const bad[] = {
      "",      "O",      "E",       "ER",
      "HELLO", "OKAY 1", "ERROR x", ("CHATFILE 1 " TOKEN),
      "\n",    "\0",
  };
  uint64_t size;
  const char *code, *text;
  size_t code_len, text_len;
  char line[CHAT_XFER_HEADER_MAX + 1];

  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(parse_reply(bad[i], strlen(bad[i]), &size, &code,
                                 &code_len, &text, &text_len),
                     CHAT_EPROTO);
  assert_int_equal(
      parse_reply(S("\0"), &size, &code, &code_len, &text, &text_len),
      CHAT_EPROTO);
  /* An ERR line over the header limit. */
  memset(line, 'x', sizeof(line));
  memcpy(line, "ERR busy ", 9);
  assert_int_equal(parse_reply(line, sizeof(line), &size, &code, &code_len,
                               &text, &text_len),
                   CHAT_EPROTO);
}

static void test_parse_reply_every_truncation_of_ok(void **state) {
  static const char line[] = "OK 123";
  static const uint64_t want[] = {0, 0, 0, 0, 1, 12, 123};
  uint64_t size;
  const char *code, *text;
  size_t code_len, text_len;

  for (size_t len = 0; len < sizeof(line); len++) {
    int rc = parse_reply(line, len, &size, &code, &code_len, &text, &text_len);

    if (len < 4) {
      assert_int_equal(rc, CHAT_EPROTO);
    } else {
      assert_int_equal(rc, 0);
      assert_true(size == want[len]);
    }
  }
}

static void test_parse_reply_every_truncation_of_err(void **state) {
  static const char line[] = "ERR bad-token unknown token";
  const size_t code_end = 13; /* "ERR bad-token" */
  uint64_t size;
  const char *code, *text;
  size_t code_len, text_len;

  for (size_t len = 0; len < sizeof(line); len++) {
    int rc = parse_reply(line, len, &size, &code, &code_len, &text, &text_len);

    if (len <= 4) { /* "", "E", ..., "ERR " */
      assert_int_equal(rc, CHAT_EPROTO);
    } else if (len <= code_end) { /* "ERR b" ... "ERR bad-token" */
      assert_int_equal(rc, CHAT_EREFUSED);
      assert_ptr_equal(code, line + 4);
      assert_int_equal(code_len, len - 4);
      assert_int_equal(text_len, 0);
    } else if (len == code_end + 1) {
      /* "ERR bad-token ": an empty text. Either reading is defensible;
       * when refused, the code must be whole and the text empty. */
      if (rc == CHAT_EREFUSED) {
        assert_ptr_equal(code, line + 4);
        assert_int_equal(code_len, code_end - 4);
        assert_int_equal(text_len, 0);
      } else {
        assert_int_equal(rc, CHAT_EPROTO);
      }
    } else {
      assert_int_equal(rc, CHAT_EREFUSED);
      assert_ptr_equal(code, line + 4);
      assert_int_equal(code_len, code_end - 4);
      assert_ptr_equal(text, line + code_end + 1);
      assert_int_equal(text_len, len - code_end - 1);
    }
  }
}

/* ---- hex ------------------------------------------------------------ */

static void test_hex_known_vectors(void **state) {
  static const unsigned char in[] = {0x00, 0x01, 0x7f, 0x80,
                                     0xab, 0xcd, 0xef, 0xff};
  char out[2 * sizeof(in) + 2];

  memset(out, 'Z', sizeof(out));
  chat_hex(in, 0, out);
  assert_string_equal(out, "");
  assert_int_equal(out[1], 'Z');

  memset(out, 'Z', sizeof(out));
  chat_hex(in, sizeof(in), out);
  assert_string_equal(out, "00017f80abcdefff");
  assert_int_equal(out[2 * sizeof(in) + 1], 'Z');

  chat_hex((const unsigned char *)"abc", 3, out);
  assert_string_equal(out, "616263");
}

static void test_hex_every_byte(void **state) {
  static const char digits[] = "0123456789abcdef";
  unsigned char in[256];
  char out[2 * 256 + 1];

  for (int i = 0; i < 256; i++)
    in[i] = (unsigned char)i;
  chat_hex(in, sizeof(in), out);
  assert_int_equal(strlen(out), 512);
  for (int i = 0; i < 256; i++) {
    assert_int_equal(out[2 * i], digits[i >> 4]);
    assert_int_equal(out[2 * i + 1], digits[i & 15]);
  }
}

/* ---- deterministic fuzzing ------------------------------------------ */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t xorshift64(void) {
  uint64_t x = rng_state;

  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return rng_state = x;
}

static size_t rnd(size_t n) {
  return (size_t)(xorshift64() % n);
}

/* Reference UTF-8 validation for chat_filename_check's model: 0 when
 * s[0..len) is valid UTF-8 with no C0, DEL or C1 control characters, no
 * invisible character (U+00AD, U+200B-U+200F, U+2060-U+2064, U+FEFF), no
 * line or paragraph separator (U+2028, U+2029) and no bidirectional control
 * (U+061C, U+202A-U+202E, U+2066-U+2069). */
static int model_filename_text(const unsigned char *s, size_t len) {
  size_t i = 0;

  while (i < len) {
    unsigned c = s[i], cp;
    size_t n;

    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f)
        return -1;
      i++;
      continue;
    }
    if (c >= 0xc2 && c <= 0xdf)
      n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
      n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
      n = 4, cp = c & 0x07;
    else
      return -1;
    if (len - i < n)
      return -1;
    for (size_t k = 1; k < n; k++) {
      if ((s[i + k] & 0xc0) != 0x80)
        return -1;
      cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp < 0xa0)
      return -1; /* overlong, out of range, surrogate or C1 */
    if (cp == 0x00ad || cp == 0x061c || (cp >= 0x200b && cp <= 0x200f) ||
        (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x2064) ||
        (cp >= 0x2066 && cp <= 0x2069) || cp == 0xfeff)
      return -1; /* invisible, line separator or bidirectional control */
    i += n;
  }
  return 0;
}

static int model_filename_check(const char *name, size_t len) {
  if (len == 0 || len > CHAT_FILENAME_MAX || name[0] == '.' ||
      memchr(name, '/', len) != NULL || memchr(name, '\\', len) != NULL ||
      model_filename_text((const unsigned char *)name, len) != 0)
    return CHAT_EFILENAME;
  return 0;
}

/* Fills buf with a fuzz input of at most cap bytes, built from seed lines
 * by mutation or from scratch, and returns its length. */
static size_t fuzz_input(char *buf, size_t cap) {
  static const char *const seeds[] = {
      REQUEST,
      "OK 123",
      "OK 9223372036854775807",
      "ERR bad-token unknown token",
      "ERR busy",
      "a b c d",
      "my file \xc3\xa9.txt",
      "CHATFILE 1 ",
      "OK ",
  };
  static const char alphabet[] = "CHATFILEOKR 0123456789abcdefABg+-./\\\t\n";
  size_t len;

  if (rnd(4) == 0) { /* from scratch */
    len = rnd(cap < 48 ? cap + 1 : 49);
    for (size_t i = 0; i < len; i++)
      buf[i] =
          rnd(4) == 0 ? (char)rnd(256) : alphabet[rnd(sizeof(alphabet) - 1)];
    return len;
  }
  {
    const char *seed = seeds[rnd(sizeof(seeds) / sizeof(seeds[0]))];

    len = strlen(seed);
    memcpy(buf, seed, len);
  }
  for (size_t m = rnd(4); m > 0; m--) {
    size_t pos = len ? rnd(len) : 0;
    char c = rnd(2) ? (char)rnd(256) : alphabet[rnd(sizeof(alphabet) - 1)];

    switch (rnd(5)) {
    case 0: /* replace */
      if (len)
        buf[pos] = c;
      break;
    case 1: /* insert */
      if (len < cap) {
        memmove(buf + pos + 1, buf + pos, len - pos);
        buf[pos] = c;
        len++;
      }
      break;
    case 2: /* delete */
      if (len) {
        memmove(buf + pos, buf + pos + 1, len - pos - 1);
        len--;
      }
      break;
    case 3: /* truncate */
      len = pos;
      break;
    default: /* append */
      if (len < cap)
        buf[len++] = c;
      break;
    }
  }
  return len;
}

static void check_fuzz_request(const char *in, size_t len) {
  char token[CHAT_TOKEN_LEN + 2];
  int rc;

  memset(token, 'Z', sizeof(token));
  rc = chat_xfer_parse_request(in, len, token);
  if (rc != 0) {
    assert_int_equal(rc, CHAT_EPROTO);
    return;
  }
  assert_int_equal(token[CHAT_TOKEN_LEN], '\0');
  assert_int_equal(token[CHAT_TOKEN_LEN + 1], 'Z');
  assert_int_equal(chat_token_check(token, strlen(token)), 0);
  assert_true(len >= sizeof(REQUEST) - 1);
  assert_memory_equal(in, "CHATFILE 1 ", 11);
  assert_memory_equal(in + 11, token, CHAT_TOKEN_LEN);
  /* The line must be exactly the header; a trailing space is checked by
   * test_parse_request_rejects_trailing_space, so tolerate it here to keep
   * the fuzz loop looking for other faults. */
  if (len == sizeof(REQUEST))
    assert_int_equal(in[len - 1], ' ');
  else
    assert_int_equal(len, sizeof(REQUEST) - 1);
}

static void check_fuzz_reply(const char *in, size_t len) {
  uint64_t size;
  const char *code, *text;
  size_t code_len, text_len;
  int rc = parse_reply(in, len, &size, &code, &code_len, &text, &text_len);

  if (rc == 0) {
    char want[32];
    int n;

    assert_true(size <= (uint64_t)INT64_MAX);
    n = snprintf(want, sizeof(want), "OK %llu", (unsigned long long)size);
    assert_int_equal((size_t)n, len);
    assert_memory_equal(in, want, len);
  } else if (rc == CHAT_EREFUSED) {
    assert_true(len > 4);
    assert_memory_equal(in, "ERR ", 4);
    assert_ptr_equal(code, in + 4);
    assert_true(code_len > 0);
    assert_null(memchr(code, ' ', code_len));
    assert_true(code + code_len <= in + len);
    if (text_len > 0) {
      assert_ptr_equal(text, code + code_len + 1);
      assert_int_equal(text[-1], ' ');
      assert_ptr_equal(text + text_len, in + len);
    } else {
      /* No text: the code ends the line (or, arguably, one space does). */
      assert_true(code + code_len == in + len ||
                  (code + code_len + 1 == in + len && in[len - 1] == ' '));
    }
  } else {
    assert_int_equal(rc, CHAT_EPROTO);
  }
}

static void check_fuzz_split(const char *in, size_t len) {
  const char *f[5];
  size_t fl[5];
  int max = 1 + (int)rnd(4), rest = (int)rnd(2);
  int n = chat_args_split(in, len, max, rest, f, fl);

  if (n < 0) {
    assert_int_equal(n, CHAT_EPROTO);
    return;
  }
  assert_int_equal(n, max);
  assert_ptr_equal(f[0], in);
  for (int i = 0; i < n; i++) {
    assert_true(fl[i] > 0);
    assert_true(f[i] >= in && f[i] + fl[i] <= in + len);
    if (i < n - 1 || !rest)
      assert_null(memchr(f[i], ' ', fl[i]));
    if (i > 0) {
      assert_ptr_equal(f[i], f[i - 1] + fl[i - 1] + 1);
      assert_int_equal(f[i][-1], ' ');
    }
  }
  /* The fields cover the whole input; a trailing space after the last
   * field without rest is covered by test_args_split_rejects_trailing_space
   * and tolerated here so the loop keeps looking for other faults. */
  if (rest || f[n - 1] + fl[n - 1] == in + len)
    assert_ptr_equal(f[n - 1] + fl[n - 1], in + len);
  else
    assert_true(f[n - 1] + fl[n - 1] + 1 == in + len && in[len - 1] == ' ');
}

static void test_fuzz_parsers(void **state) {
  enum { ITERATIONS = 100000, CAP = 160 };
  char buf[CAP];

  rng_state = 0x9e3779b97f4a7c15u;
  for (long it = 0; it < ITERATIONS; it++) {
    size_t len = fuzz_input(buf, sizeof(buf));
    /* An exact-size heap copy lets valgrind catch any read past len. */
    char *in = malloc(len ? len : 1);

    assert_non_null(in);
    memcpy(in, buf, len);
    check_fuzz_request(in, len);
    check_fuzz_reply(in, len);
    check_fuzz_split(in, len);
    assert_int_equal(chat_filename_check(in, len),
                     model_filename_check(in, len));
    free(in);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_filename_check_accepts_valid_names),
      cmocka_unit_test(test_filename_check_rejects_bad_length),
      cmocka_unit_test(test_filename_check_rejects_dot_names_and_paths),
      cmocka_unit_test(test_filename_check_rejects_control_characters),
      cmocka_unit_test(test_filename_check_rejects_invalid_utf8),
      cmocka_unit_test(test_filename_check_rejects_deceptive_characters),
      cmocka_unit_test(test_filename_check_accepts_neighbours_of_deceptive),
      cmocka_unit_test(test_filename_check_every_code_point),
      cmocka_unit_test(test_part_name_len_ascii_every_length),
      cmocka_unit_test(test_part_name_len_cuts_on_character_boundary),
      cmocka_unit_test(test_token_new_gives_lower_hex),
      cmocka_unit_test(test_token_new_does_not_repeat),
      cmocka_unit_test(test_token_check_accepts_lower_hex),
      cmocka_unit_test(test_token_check_rejects_bad_tokens),
      cmocka_unit_test(test_token_check_every_byte),
      cmocka_unit_test(test_token_equal),
      cmocka_unit_test(test_parse_u64_accepts_numbers),
      cmocka_unit_test(test_parse_u64_rejects_overflow),
      cmocka_unit_test(test_parse_u64_rejects_junk),
      cmocka_unit_test(test_parse_u64_respects_max_digits),
      cmocka_unit_test(test_args_split_exact_fields),
      cmocka_unit_test(test_args_split_rest_takes_remainder),
      cmocka_unit_test(test_args_split_rejects_too_few_fields),
      cmocka_unit_test(test_args_split_rejects_too_many_fields),
      cmocka_unit_test(test_args_split_rejects_empty_fields),
      cmocka_unit_test(test_args_split_rejects_trailing_space),
      cmocka_unit_test(test_parse_request_accepts_valid_line),
      cmocka_unit_test(test_parse_request_rejects_bad_lines),
      cmocka_unit_test(test_parse_request_rejects_trailing_space),
      cmocka_unit_test(test_parse_request_rejects_long_line),
      cmocka_unit_test(test_parse_request_every_truncation),
      cmocka_unit_test(test_parse_reply_ok),
      cmocka_unit_test(test_parse_reply_rejects_bad_ok),
      cmocka_unit_test(test_parse_reply_err_with_text),
      cmocka_unit_test(test_parse_reply_err_without_text),
      cmocka_unit_test(test_parse_reply_rejects_bad_err),
      cmocka_unit_test(test_parse_reply_rejects_other_lines),
      cmocka_unit_test(test_parse_reply_every_truncation_of_ok),
      cmocka_unit_test(test_parse_reply_every_truncation_of_err),
      cmocka_unit_test(test_hex_known_vectors),
      cmocka_unit_test(test_hex_every_byte),
      cmocka_unit_test(test_fuzz_parsers),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
