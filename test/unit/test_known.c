/* Unit tests of the known-hosts lookup (src/client/known.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "known.h"

#define FP_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define FP_B "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

static int look(const char *text, const char *hp, char *fp) {
  return trust_known_lookup(text, strlen(text), hp, fp);
}

static void test_finds_its_line_only(void **state) {
  const char *text = "# comment\n"
                     "[chat.example.org]:5000 " FP_A "\n"
                     "[chat.example.org]:5001 " FP_B "\n";
  char fp[CHAT_TLS_FP_MAX];

  (void)state;
  assert_int_equal(look(text, "[chat.example.org]:5000", fp), 1);
  assert_string_equal(fp, FP_A);
  assert_int_equal(look(text, "[CHAT.example.ORG]:5001", fp), 1);
  assert_string_equal(fp, FP_B);
  assert_int_equal(look(text, "[chat.example.org]:500", fp), 0);
  assert_int_equal(look(text, "[example.org]:5000", fp), 0);
  assert_int_equal(look("", "[a]:1", fp), 0);
}

static void test_tolerates_spacing_crlf_and_colons(void **state) {
  char fp[CHAT_TLS_FP_MAX];

  (void)state;
  assert_int_equal(look("  [h]:1 \t " FP_A " \r\n", "[h]:1", fp), 1);
  assert_string_equal(fp, FP_A);
  assert_int_equal(look("[h]:1 SHA256:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:"
                        "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:"
                        "CD:EF",
                        "[h]:1", fp),
                   1);
  assert_string_equal(fp, FP_A);
  /* The last line needs no newline. */
  assert_int_equal(look("[x]:2 " FP_B "\n[h]:1 " FP_A, "[h]:1", fp), 1);
}

static void test_a_broken_line_for_the_host_is_not_a_miss(void **state) {
  char fp[CHAT_TLS_FP_MAX];

  (void)state;
  /* Treating it as unknown would trust a new key silently. */
  assert_int_equal(look("[h]:1 nonsense\n", "[h]:1", fp), -1);
  assert_int_equal(look("[h]:1\n", "[h]:1", fp), -1);
  assert_int_equal(look("[h]:1 " FP_A "00\n", "[h]:1", fp), -1);
  /* Only letters fold: '{' is not '[' (regression). */
  assert_int_equal(look("{h}:1 " FP_A "\n", "[h]:1", fp), 0);
  /* Commented out: gone. */
  assert_int_equal(look("#[h]:1 " FP_A "\n", "[h]:1", fp), 0);
}

/* Only letters fold in the "sha256:" prefix: 0x12 is not '2' (found by
 * the fuzz target). */
static void test_fp_prefix_folds_letters_only(void **state) {
  char out[CHAT_TLS_FP_MAX];

  (void)state;
  assert_int_equal(chat_tls_fp_parse("ShA256:" FP_A, out), 0);
  assert_int_equal(chat_tls_fp_parse("SHA\x12"
                                     "56:" FP_A,
                                     out),
                   CHAT_EARG);
}

static void test_hostport(void **state) {
  char out[64];

  (void)state;
  trust_hostport("::1", 5000, out, sizeof(out));
  assert_string_equal(out, "[::1]:5000");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_finds_its_line_only),
      cmocka_unit_test(test_tolerates_spacing_crlf_and_colons),
      cmocka_unit_test(test_a_broken_line_for_the_host_is_not_a_miss),
      cmocka_unit_test(test_fp_prefix_folds_letters_only),
      cmocka_unit_test(test_hostport),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
