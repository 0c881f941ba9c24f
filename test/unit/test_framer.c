/* Unit tests of the line framer (include/chat/framer.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "chat/error.h"
#include "chat/framer.h"

#define S(lit) (lit), (sizeof(lit) - 1)

/* Everything the framer delivered, flattened: each line followed by "\n",
 * each over-long line as "<ELINE>\n". Lines never hold "\n", so the
 * transcript is unambiguous and a whole run compares with one memcmp. */
typedef struct {
  char *data;
  size_t len;
  size_t cap;
  int calls;
  int elines;
  int stop_at; /* non-zero: return stop_value from this call on */
  int stop_value;
  const char *chunk; /* the chunk being fed, to see where lines come from */
  size_t chunk_len;
  int from_chunk; /* lines whose bytes lay inside chunk */
} transcript_t;

static void transcript_init(transcript_t *t) {
  memset(t, 0, sizeof(*t));
}

static void transcript_free(transcript_t *t) {
  free(t->data);
  memset(t, 0, sizeof(*t));
}

static void transcript_add(transcript_t *t, const char *p, size_t n) {
  if (t->len + n > t->cap) {
    size_t cap = t->cap ? t->cap : 64;
    while (cap < t->len + n)
      cap *= 2;
    t->data = realloc(t->data, cap);
    assert_non_null(t->data);
    t->cap = cap;
  }
  if (n > 0)
    memcpy(t->data + t->len, p, n);
  t->len += n;
}

static int record(void *ctx, int status, const char *line, size_t len) {
  transcript_t *t = ctx;

  t->calls++;
  if (status == CHAT_ELINE) {
    assert_null(line);
    assert_int_equal(len, 0);
    t->elines++;
    transcript_add(t, S("<ELINE>\n"));
  } else {
    assert_int_equal(status, 0);
    if (len > 0) {
      assert_non_null(line);
      if (t->chunk != NULL && line >= t->chunk &&
          line + len <= t->chunk + t->chunk_len)
        t->from_chunk++;
    }
    transcript_add(t, line, len);
    transcript_add(t, "\n", 1);
  }
  if (t->stop_at != 0 && t->calls >= t->stop_at)
    return t->stop_value;
  return 0;
}

static void assert_transcript(const transcript_t *t, const char *want,
                              size_t want_len) {
  if (t->len != want_len || memcmp(t->data, want, want_len) != 0) {
    print_error("transcript mismatch: got %zu bytes, want %zu\n", t->len,
                want_len);
    fail();
  }
}

/* Feeds a chunk from an exact-size heap copy, so that ASan and valgrind
 * catch any read past the end of the caller's data. */
static int feed_copy(chat_framer_t *f, const char *data, size_t len,
                     transcript_t *t) {
  char *copy = malloc(len > 0 ? len : 1);
  int rc;

  assert_non_null(copy);
  if (len > 0)
    memcpy(copy, data, len);
  t->chunk = copy;
  t->chunk_len = len;
  rc = chat_framer_feed(f, copy, len, record, t);
  t->chunk = NULL;
  t->chunk_len = 0;
  free(copy);
  return rc;
}

/* Feeds in split into the pieces given by the sorted cut positions, then
 * finishes, and compares everything delivered with want. */
static void run_split(const char *in, size_t len, const size_t *cuts,
                      size_t ncuts, size_t max_line, const char *want,
                      size_t want_len) {
  chat_framer_t f;
  transcript_t t;
  size_t start = 0;

  chat_framer_init(&f, max_line);
  transcript_init(&t);
  for (size_t i = 0; i <= ncuts; i++) {
    size_t end = i < ncuts ? cuts[i] : len;
    assert_int_equal(feed_copy(&f, in + start, end - start, &t), 0);
    start = end;
  }
  assert_int_equal(chat_framer_finish(&f, record, &t), 0);
  assert_int_equal(chat_framer_pending(&f), 0);
  if (t.len != want_len || memcmp(t.data, want, want_len) != 0) {
    print_error("split at");
    for (size_t i = 0; i < ncuts; i++)
      print_error(" %zu", cuts[i]);
    print_error(" of %zu bytes: transcript mismatch\n", len);
    fail();
  }
  transcript_free(&t);
  chat_framer_free(&f);
}

static void run_every_split(const char *in, size_t len, size_t max_line,
                            const char *want, size_t want_len) {
  size_t cut[2];

  run_split(in, len, NULL, 0, max_line, want, want_len);
  for (cut[0] = 0; cut[0] <= len; cut[0]++)
    run_split(in, len, cut, 1, max_line, want, want_len);
}

static void run_every_split_pair(const char *in, size_t len, size_t max_line,
                                 const char *want, size_t want_len) {
  size_t cut[2];

  for (cut[0] = 0; cut[0] <= len; cut[0]++)
    for (cut[1] = cut[0]; cut[1] <= len; cut[1]++)
      run_split(in, len, cut, 2, max_line, want, want_len);
}

static void run_byte_by_byte(const char *in, size_t len, size_t max_line,
                             const char *want, size_t want_len) {
  size_t *cuts = malloc(len * sizeof(*cuts) + 1);

  assert_non_null(cuts);
  for (size_t i = 0; i < len; i++)
    cuts[i] = i + 1;
  run_split(in, len, cuts, len, max_line, want, want_len);
  free(cuts);
}

/* Mixes CRLF, bare LF, empty lines, a lone CR inside a line, CR CR LF,
 * invalid UTF-8, a NUL byte and an unterminated last line. */
static const char multi_in[] = "hello\r\nworld\n\nfoo\rbar\r\n\r\n"
                               "a\r\r\n\xff\xfe"
                               "x\nnul\0byte\nlast";
static const char multi_want[] = "hello\nworld\n\nfoo\rbar\n\n"
                                 "a\r\n\xff\xfe"
                                 "x\nnul\0byte\nlast\n";

static void test_splits_at_every_byte_boundary(void **state) {
  run_every_split(S(multi_in), 1024, S(multi_want));
}

static void test_splits_at_every_pair_of_boundaries(void **state) {
  static const char in[] = "ab\r\n\ncd\rx\r\nef";
  static const char want[] = "ab\n\ncd\rx\nef\n";

  run_every_split_pair(S(in), 1024, S(want));
}

static void test_byte_by_byte_feed(void **state) {
  run_byte_by_byte(S(multi_in), 1024, S(multi_want));
}

static void test_whole_input_in_one_chunk(void **state) {
  run_split(S(multi_in), NULL, 0, 1024, S(multi_want));
}

static void test_crlf_drops_one_cr_only(void **state) {
  run_every_split(S("a\r\nb\r\r\n\r\n"), 64, S("a\nb\r\n\n"));
}

static void test_lone_cr_is_data(void **state) {
  run_every_split(S("\rx\ny\rz\n\r\r\r\n"), 64, S("\rx\ny\rz\n\r\r\n"));
}

static void test_empty_lines_have_len_zero(void **state) {
  chat_framer_t f;
  transcript_t t;

  chat_framer_init(&f, 16);
  transcript_init(&t);
  assert_int_equal(chat_framer_feed(&f, S("\n\n\r\n"), record, &t), 0);
  assert_int_equal(t.calls, 3);
  assert_transcript(&t, S("\n\n\n"));
  transcript_free(&t);
  chat_framer_free(&f);
}

static void test_empty_chunk_does_nothing(void **state) {
  chat_framer_t f;
  transcript_t t;

  chat_framer_init(&f, 16);
  transcript_init(&t);
  assert_int_equal(chat_framer_feed(&f, "", 0, record, &t), 0);
  assert_int_equal(chat_framer_feed(&f, S("ab"), record, &t), 0);
  assert_int_equal(chat_framer_feed(&f, "", 0, record, &t), 0);
  assert_int_equal(t.calls, 0);
  assert_int_equal(chat_framer_pending(&f), 2);
  transcript_free(&t);
  chat_framer_free(&f);
}

static void test_exactly_max_line_is_accepted(void **state) {
  run_every_split(S("12345678\nabc\n"), 8, S("12345678\nabc\n"));
  run_byte_by_byte(S("12345678\n"), 8, S("12345678\n"));
  run_every_split(S("a\nb\n"), 1, S("a\nb\n"));
}

/* The CR of a CRLF is terminator, not line: it must not push a line of
 * exactly max_line bytes over the limit. */
static void test_exactly_max_line_with_crlf_is_accepted(void **state) {
  run_every_split(S("12345678\r\nabc\r\n"), 8, S("12345678\nabc\n"));
  run_byte_by_byte(S("12345678\r\n"), 8, S("12345678\n"));
}

static void test_max_line_plus_one_is_reported_once(void **state) {
  chat_framer_t f;
  transcript_t t;

  chat_framer_init(&f, 8);
  transcript_init(&t);
  assert_int_equal(chat_framer_feed(&f, S("123456789\nnext\n"), record, &t), 0);
  assert_int_equal(t.elines, 1);
  assert_int_equal(t.calls, 2);
  assert_transcript(&t, S("<ELINE>\nnext\n"));
  transcript_free(&t);
  chat_framer_free(&f);
}

static void test_over_long_line_at_every_split(void **state) {
  static const char in[] = "ok\n123456789\n12345678\nafter\n"
                           "123456789\r\nend";
  static const char want[] = "ok\n<ELINE>\n12345678\nafter\n<ELINE>\nend\n";

  run_every_split(S(in), 8, S(want));
  run_every_split_pair(S("ab\n1234567\nc\n"), 4, S("ab\n<ELINE>\nc\n"));
  run_every_split(S("ab\n"), 1, S("<ELINE>\n"));
}

static void test_over_long_line_byte_by_byte(void **state) {
  static const char in[] = "123456789abcdefghij\nnext line\n";
  chat_framer_t f;
  transcript_t t;

  chat_framer_init(&f, 9);
  transcript_init(&t);
  for (size_t i = 0; i < sizeof(in) - 1; i++) {
    assert_int_equal(chat_framer_feed(&f, &in[i], 1, record, &t), 0);
    assert_true(chat_framer_pending(&f) <= 9);
  }
  assert_int_equal(chat_framer_finish(&f, record, &t), 0);
  assert_int_equal(t.elines, 1);
  assert_transcript(&t, S("<ELINE>\nnext line\n"));
  transcript_free(&t);
  chat_framer_free(&f);
}

static void test_over_long_lines_back_to_back(void **state) {
  run_every_split(S("aaaaaa\nbbbbbb\nc\n"), 5, S("<ELINE>\n<ELINE>\nc\n"));
}

static void test_over_long_unterminated_line_reported_once(void **state) {
  chat_framer_t f;
  transcript_t t;

  chat_framer_init(&f, 4);
  transcript_init(&t);
  assert_int_equal(chat_framer_feed(&f, S("abcdefgh"), record, &t), 0);
  assert_int_equal(chat_framer_feed(&f, S("ijkl"), record, &t), 0);
  assert_true(chat_framer_pending(&f) <= 4);
  assert_int_equal(chat_framer_finish(&f, record, &t), 0);
  assert_int_equal(t.elines, 1);
  assert_transcript(&t, S("<ELINE>\n"));
  transcript_free(&t);
  chat_framer_free(&f);
}

static void test_default_max_line_grows_buffer(void **state) {
  enum { N = 8192 };
  char *in = malloc(N + 2);
  chat_framer_t f;
  transcript_t t;

  assert_non_null(in);
  for (size_t i = 0; i < N + 1; i++)
    in[i] = (char)('a' + i % 26);
  in[N + 1] = '\n';

  /* N bytes: accepted, carried across many chunks. */
  chat_framer_init(&f, N);
  transcript_init(&t);
  for (size_t off = 0; off < N; off += 1000) {
    size_t n = N - off < 1000 ? N - off : 1000;
    assert_int_equal(feed_copy(&f, in + off, n, &t), 0);
  }
  assert_int_equal(chat_framer_pending(&f), N);
  assert_int_equal(feed_copy(&f, "\n", 1, &t), 0);
  assert_int_equal(t.calls, 1);
  assert_int_equal(t.len, N + 1);
  assert_memory_equal(t.data, in, N);
  transcript_free(&t);
  chat_framer_free(&f);

  /* N + 1 bytes: over-long. */
  chat_framer_init(&f, N);
  transcript_init(&t);
  for (size_t off = 0; off < N + 2; off += 1000) {
    size_t n = N + 2 - off < 1000 ? N + 2 - off : 1000;
    assert_int_equal(feed_copy(&f, in + off, n, &t), 0);
  }
  assert_transcript(&t, S("<ELINE>\n"));
  transcript_free(&t);
  chat_framer_free(&f);
  free(in);
}

static void test_callback_stop_returns_its_value(void **state) {
  chat_framer_t f;
  transcript_t t;

  chat_framer_init(&f, 16);
  transcript_init(&t);
  t.stop_at = 2;
  t.stop_value = 42;
  assert_int_equal(chat_framer_feed(&f, S("a\nb\nc\nd"), record, &t), 42);
  assert_int_equal(t.calls, 2);
  assert_transcript(&t, S("a\nb\n"));
  transcript_free(&t);
  chat_framer_free(&f);
}

static void test_callback_stop_drops_rest_of_chunk(void **state) {
  chat_framer_t f;
  transcript_t t;

  chat_framer_init(&f, 16);
  transcript_init(&t);
  assert_int_equal(chat_framer_feed(&f, S("pa"), record, &t), 0);
  t.stop_at = 1;
  t.stop_value = CHAT_ECLOSED;
  assert_int_equal(chat_framer_feed(&f, S("rt\nb\nc\nd"), record, &t),
                   CHAT_ECLOSED);
  assert_transcript(&t, S("part\n"));

  /* Neither the delivered partial nor the dropped tail comes back. */
  t.stop_at = 0;
  assert_int_equal(chat_framer_feed(&f, S("e\n"), record, &t), 0);
  assert_int_equal(chat_framer_finish(&f, record, &t), 0);
  assert_transcript(&t, S("part\ne\n"));
  transcript_free(&t);
  chat_framer_free(&f);
}

static void test_callback_stop_on_over_long_line(void **state) {
  chat_framer_t f;
  transcript_t t;

  chat_framer_init(&f, 3);
  transcript_init(&t);
  t.stop_at = 1;
  t.stop_value = -7;
  assert_int_equal(chat_framer_feed(&f, S("abcd\nok\n"), record, &t), -7);
  assert_int_equal(t.calls, 1);
  assert_int_equal(t.elines, 1);
  transcript_free(&t);
  chat_framer_free(&f);
}

static void test_callback_stop_in_finish(void **state) {
  chat_framer_t f;
  transcript_t t;

  chat_framer_init(&f, 16);
  transcript_init(&t);
  assert_int_equal(chat_framer_feed(&f, S("tail"), record, &t), 0);
  t.stop_at = 1;
  t.stop_value = 9;
  assert_int_equal(chat_framer_finish(&f, record, &t), 9);
  assert_transcript(&t, S("tail\n"));
  transcript_free(&t);
  chat_framer_free(&f);
}

static void test_finish_delivers_unterminated_line(void **state) {
  chat_framer_t f;
  transcript_t t;

  chat_framer_init(&f, 16);
  transcript_init(&t);
  assert_int_equal(chat_framer_feed(&f, S("one\ntw"), record, &t), 0);
  assert_int_equal(chat_framer_feed(&f, S("o"), record, &t), 0);
  assert_int_equal(chat_framer_finish(&f, record, &t), 0);
  assert_transcript(&t, S("one\ntwo\n"));
  assert_int_equal(chat_framer_pending(&f), 0);

  /* A second finish has nothing left to deliver. */
  assert_int_equal(chat_framer_finish(&f, record, &t), 0);
  assert_int_equal(t.calls, 2);
  transcript_free(&t);
  chat_framer_free(&f);
}

static void test_finish_without_partial_delivers_nothing(void **state) {
  chat_framer_t f;
  transcript_t t;

  chat_framer_init(&f, 16);
  transcript_init(&t);
  assert_int_equal(chat_framer_finish(&f, record, &t), 0);
  assert_int_equal(t.calls, 0);
  assert_int_equal(chat_framer_feed(&f, S("x\n"), record, &t), 0);
  assert_int_equal(chat_framer_finish(&f, record, &t), 0);
  assert_int_equal(t.calls, 1);
  assert_transcript(&t, S("x\n"));
  transcript_free(&t);
  chat_framer_free(&f);
}

static void test_pending_counts_partial_bytes(void **state) {
  chat_framer_t f;
  transcript_t t;

  chat_framer_init(&f, 16);
  transcript_init(&t);
  assert_int_equal(chat_framer_pending(&f), 0);
  assert_int_equal(chat_framer_feed(&f, S("ab"), record, &t), 0);
  assert_int_equal(chat_framer_pending(&f), 2);
  assert_int_equal(chat_framer_feed(&f, S("c"), record, &t), 0);
  assert_int_equal(chat_framer_pending(&f), 3);
  assert_int_equal(chat_framer_feed(&f, S("\n"), record, &t), 0);
  assert_int_equal(chat_framer_pending(&f), 0);
  assert_int_equal(chat_framer_feed(&f, S("x\ny"), record, &t), 0);
  assert_int_equal(chat_framer_pending(&f), 1);
  assert_int_equal(chat_framer_feed(&f, S("z\n"), record, &t), 0);
  assert_int_equal(chat_framer_pending(&f), 0);
  assert_transcript(&t, S("abc\nx\nyz\n"));
  transcript_free(&t);
  chat_framer_free(&f);
}

static void test_invalid_utf8_passes_through(void **state) {
  static const char in[] = "\xff\xfe\xc0\xaf\xed\xa0\x80\x80\xf4\x90\x80"
                           "\x80\xc3\n";

  run_every_split(S(in), 64, S(in));
}

static void test_straight_lines_mixed_with_partials(void **state) {
  chat_framer_t f;
  transcript_t t;

  chat_framer_init(&f, 32);
  transcript_init(&t);
  assert_int_equal(feed_copy(&f, S("par"), &t), 0);
  assert_int_equal(feed_copy(&f, S("tial\nwhole\r\nanother\nre"), &t), 0);
  assert_int_equal(feed_copy(&f, S("st\n\nmore\npart"), &t), 0);
  assert_int_equal(feed_copy(&f, S("ial2\n"), &t), 0);
  assert_transcript(&t, S("partial\nwhole\nanother\nrest\n\nmore\npartial2\n"));
  transcript_free(&t);
  chat_framer_free(&f);
}

/* framer.h promises complete lines are handed out from the caller's buffer
 * when possible (no copy), which is what keeps an idle peer free. */
static void test_complete_lines_come_from_caller_buffer(void **state) {
  chat_framer_t f;
  transcript_t t;

  chat_framer_init(&f, 32);
  transcript_init(&t);
  assert_int_equal(feed_copy(&f, S("one\ntwo\r\nthree\nfo"), &t), 0);
  assert_int_equal(t.from_chunk, 3);
  assert_int_equal(feed_copy(&f, S("ur\nfive\n"), &t), 0);
  /* "four" had to be joined from two chunks; "five" did not. */
  assert_int_equal(t.from_chunk, 4);
  assert_transcript(&t, S("one\ntwo\nthree\nfour\nfive\n"));
  transcript_free(&t);
  chat_framer_free(&f);
}

static void test_framer_can_be_reinitialised(void **state) {
  chat_framer_t f;
  transcript_t t;

  chat_framer_init(&f, 8);
  transcript_init(&t);
  chat_framer_free(&f); /* never fed: nothing to free */
  chat_framer_init(&f, 8);
  assert_int_equal(chat_framer_feed(&f, S("left"), record, &t), 0);
  chat_framer_free(&f);
  chat_framer_init(&f, 8);
  assert_int_equal(chat_framer_pending(&f), 0);
  assert_int_equal(chat_framer_feed(&f, S("fresh\n"), record, &t), 0);
  assert_int_equal(chat_framer_finish(&f, record, &t), 0);
  assert_transcript(&t, S("fresh\n"));
  transcript_free(&t);
  chat_framer_free(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_splits_at_every_byte_boundary),
      cmocka_unit_test(test_splits_at_every_pair_of_boundaries),
      cmocka_unit_test(test_byte_by_byte_feed),
      cmocka_unit_test(test_whole_input_in_one_chunk),
      cmocka_unit_test(test_crlf_drops_one_cr_only),
      cmocka_unit_test(test_lone_cr_is_data),
      cmocka_unit_test(test_empty_lines_have_len_zero),
      cmocka_unit_test(test_empty_chunk_does_nothing),
      cmocka_unit_test(test_exactly_max_line_is_accepted),
      cmocka_unit_test(test_exactly_max_line_with_crlf_is_accepted),
      cmocka_unit_test(test_max_line_plus_one_is_reported_once),
      cmocka_unit_test(test_over_long_line_at_every_split),
      cmocka_unit_test(test_over_long_line_byte_by_byte),
      cmocka_unit_test(test_over_long_lines_back_to_back),
      cmocka_unit_test(test_over_long_unterminated_line_reported_once),
      cmocka_unit_test(test_default_max_line_grows_buffer),
      cmocka_unit_test(test_callback_stop_returns_its_value),
      cmocka_unit_test(test_callback_stop_drops_rest_of_chunk),
      cmocka_unit_test(test_callback_stop_on_over_long_line),
      cmocka_unit_test(test_callback_stop_in_finish),
      cmocka_unit_test(test_finish_delivers_unterminated_line),
      cmocka_unit_test(test_finish_without_partial_delivers_nothing),
      cmocka_unit_test(test_pending_counts_partial_bytes),
      cmocka_unit_test(test_invalid_utf8_passes_through),
      cmocka_unit_test(test_straight_lines_mixed_with_partials),
      cmocka_unit_test(test_complete_lines_come_from_caller_buffer),
      cmocka_unit_test(test_framer_can_be_reinitialised),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
