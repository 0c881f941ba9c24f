/* chat_source_key(): the source a per-address limit counts an address as. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "chat/chat.h"

static void expect_key(const char *ip, const char *want) {
  char out[CHAT_SOURCE_KEY_MAX];

  memset(out, '#', sizeof(out));
  chat_source_key(ip, out, sizeof(out));
  assert_string_equal(out, want);
}

static void test_ipv4_is_itself(void **state) {
  (void)state;
  expect_key("127.0.0.1", "127.0.0.1");
  expect_key("192.0.2.200", "192.0.2.200");
}

/* Every address of one /64 is one source; the next /64 is another. */
static void test_ipv6_counts_by_its_64(void **state) {
  (void)state;
  expect_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64");
  expect_key("2001:db8:1:2::1", "2001:db8:1:2::/64");
  expect_key("2001:db8:1:3::1", "2001:db8:1:3::/64");
  expect_key("::1", "::/64");
  expect_key("fe80::1", "fe80::/64");
}

static void test_brackets_are_dropped(void **state) {
  (void)state;
  expect_key("[2001:db8::7]", "2001:db8::/64");
}

static void test_ipv4_mapped_is_its_ipv4(void **state) {
  (void)state;
  expect_key("::ffff:192.0.2.1", "192.0.2.1");
  expect_key("[::ffff:127.0.0.1]", "127.0.0.1");
}

static void test_non_address_is_copied(void **state) {
  (void)state;
  expect_key("", "");
  expect_key("?", "?");
  expect_key("not:an:address:::", "not:an:address:::");
}

static void test_small_buffer_is_terminated(void **state) {
  char out[8];

  (void)state;
  chat_source_key("2001:db8:1:2::1", out, sizeof(out));
  assert_int_equal(strlen(out), sizeof(out) - 1);
  assert_memory_equal(out, "2001:db", 7);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ipv4_is_itself),
      cmocka_unit_test(test_ipv6_counts_by_its_64),
      cmocka_unit_test(test_brackets_are_dropped),
      cmocka_unit_test(test_ipv4_mapped_is_its_ipv4),
      cmocka_unit_test(test_non_address_is_copied),
      cmocka_unit_test(test_small_buffer_is_terminated),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
