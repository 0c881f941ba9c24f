/* Unit tests of the refcounted buffers (include/chat/buf.h). Freeing is
 * checked by running the suite under valgrind and ASan: a leak or a use of a
 * buffer after its last reference fails there. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "chat/buf.h"

static void test_new_has_requested_len(void **state) {
  chat_buf_t *b = chat_buf_new(16);

  assert_non_null(b);
  assert_int_equal(b->len, 16);
  /* The data is ours to fill until the buffer is shared. */
  memset(b->data, 'z', 16);
  assert_int_equal(b->data[0], 'z');
  assert_int_equal(b->data[15], 'z');
  chat_buf_unref(b);
}

static void test_new_zero_len(void **state) {
  chat_buf_t *b = chat_buf_new(0);

  assert_non_null(b);
  assert_int_equal(b->len, 0);
  chat_buf_unref(b);
}

static void test_from_copies_data(void **state) {
  char src[] = "hello, world";
  chat_buf_t *b = chat_buf_from(src, sizeof(src) - 1);

  assert_non_null(b);
  assert_int_equal(b->len, sizeof(src) - 1);
  assert_memory_equal(b->data, "hello, world", sizeof(src) - 1);
  memset(src, 'x', sizeof(src) - 1);
  assert_memory_equal(b->data, "hello, world", sizeof(src) - 1);
  chat_buf_unref(b);
}

static void test_from_keeps_binary_bytes(void **state) {
  static const char bytes[] = {'a', '\0', '\n', '\xff', '\x01'};
  chat_buf_t *b = chat_buf_from(bytes, sizeof(bytes));

  assert_non_null(b);
  assert_int_equal(b->len, sizeof(bytes));
  assert_memory_equal(b->data, bytes, sizeof(bytes));
  chat_buf_unref(b);
}

static void test_from_zero_len(void **state) {
  chat_buf_t *b = chat_buf_from("", 0);

  assert_non_null(b);
  assert_int_equal(b->len, 0);
  chat_buf_unref(b);
}

static void test_from_large(void **state) {
  enum { N = 1 << 20 };
  static char src[N];
  chat_buf_t *b;

  for (size_t i = 0; i < N; i++)
    src[i] = (char)(i * 7);
  b = chat_buf_from(src, N);
  assert_non_null(b);
  assert_int_equal(b->len, N);
  assert_memory_equal(b->data, src, N);
  chat_buf_unref(b);
}

static void test_ref_returns_same_buffer(void **state) {
  chat_buf_t *b = chat_buf_from("abc", 3);

  assert_non_null(b);
  assert_ptr_equal(chat_buf_ref(b), b);
  chat_buf_unref(b);
  chat_buf_unref(b);
}

/* Each unref but the last must leave the bytes readable; reading them after
 * a premature free is what ASan and valgrind report. */
static void test_buffer_survives_until_last_unref(void **state) {
  enum { REFS = 100 };
  chat_buf_t *b = chat_buf_from("shared", 6);

  assert_non_null(b);
  for (int i = 0; i < REFS; i++)
    assert_ptr_equal(chat_buf_ref(b), b);
  for (int i = 0; i < REFS; i++) {
    chat_buf_unref(b);
    assert_int_equal(b->len, 6);
    assert_memory_equal(b->data, "shared", 6);
  }
  chat_buf_unref(b);
}

static void test_holders_release_in_any_order(void **state) {
  chat_buf_t *owner = chat_buf_from("msg\n", 4);
  chat_buf_t *q1;
  chat_buf_t *q2;

  assert_non_null(owner);
  q1 = chat_buf_ref(owner);
  q2 = chat_buf_ref(owner);
  chat_buf_unref(owner); /* the formatter lets go first */
  assert_memory_equal(q1->data, "msg\n", 4);
  chat_buf_unref(q2);
  assert_memory_equal(q1->data, "msg\n", 4);
  chat_buf_unref(q1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_new_has_requested_len),
      cmocka_unit_test(test_new_zero_len),
      cmocka_unit_test(test_from_copies_data),
      cmocka_unit_test(test_from_keeps_binary_bytes),
      cmocka_unit_test(test_from_zero_len),
      cmocka_unit_test(test_from_large),
      cmocka_unit_test(test_ref_returns_same_buffer),
      cmocka_unit_test(test_buffer_survives_until_last_unref),
      cmocka_unit_test(test_holders_release_in_any_order),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
