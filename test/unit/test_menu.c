/* Unit tests of the client's menu state machine (src/client/menu.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "menu.h"

static menu_action_t feed(menu_t *m, const char *line) {
  menu_action_t act;

  menu_feed(m, line, strlen(line), &act);
  return act;
}

static void assert_text(const menu_action_t *act, const char *want) {
  assert_int_equal(act->len, strlen(want));
  assert_non_null(act->text);
  assert_memory_equal(act->text, want, act->len);
}

static void assert_prompt(const menu_action_t *act, const char *want) {
  assert_int_equal(act->kind, MENU_ACT_PROMPT);
  assert_non_null(act->prompt);
  assert_string_equal(act->prompt, want);
}

/* A menu past registration, waiting for an option. */
static void start_choosing(menu_t *m) {
  menu_action_t act;

  menu_init(m);
  act = feed(m, "alice");
  assert_int_equal(act.kind, MENU_ACT_REGISTER);
  menu_registered(m);
  assert_int_equal(m->state, MENU_CHOOSE);
}

static void test_texts_are_exact(void **state) {
  assert_string_equal(MENU_TEXT, "Enter an option ('m', 'f', 'x'):\n"
                                 "  (M)essage (send)\n"
                                 "  (F)ile (request)\n"
                                 "  e(x)it\n");
  assert_string_equal(MENU_PROMPT_NAME, "What is your name?\n");
  assert_string_equal(MENU_PROMPT_MESSAGE, "Enter your message:\n");
  assert_string_equal(MENU_PROMPT_OWNER, "Who owns the file?\n");
  assert_string_equal(MENU_PROMPT_FILE, "Which file do you want?\n");
  assert_string_equal(MENU_GOODBYE, "closing your sockets...goodbye\n");
}

static void test_first_line_registers_name(void **state) {
  menu_t m;
  menu_action_t act;

  menu_init(&m);
  assert_int_equal(m.state, MENU_NAME);
  act = feed(&m, "alice");
  assert_int_equal(act.kind, MENU_ACT_REGISTER);
  assert_text(&act, "alice");
  assert_int_equal(m.state, MENU_REGISTERING);
}

static void test_lines_while_registering_are_ignored(void **state) {
  menu_t m;
  menu_action_t act;

  menu_init(&m);
  feed(&m, "alice");
  act = feed(&m, "m");
  assert_int_equal(act.kind, MENU_ACT_NONE);
  act = feed(&m, "hello");
  assert_int_equal(act.kind, MENU_ACT_NONE);
  act = feed(&m, "");
  assert_int_equal(act.kind, MENU_ACT_NONE);
  assert_int_equal(m.state, MENU_REGISTERING);
}

static void test_rejected_name_asks_again(void **state) {
  menu_t m;
  menu_action_t act;

  menu_init(&m);
  feed(&m, "bad name");
  menu_rejected(&m);
  assert_int_equal(m.state, MENU_NAME);
  act = feed(&m, "bob");
  assert_int_equal(act.kind, MENU_ACT_REGISTER);
  assert_text(&act, "bob");
  menu_registered(&m);
  assert_int_equal(m.state, MENU_CHOOSE);
}

static void test_verdict_outside_registration_is_ignored(void **state) {
  menu_t m;
  menu_action_t act;

  menu_init(&m);
  menu_registered(&m); /* no name sent yet */
  assert_int_equal(m.state, MENU_NAME);
  menu_rejected(&m);
  assert_int_equal(m.state, MENU_NAME);

  start_choosing(&m);
  menu_rejected(&m);
  assert_int_equal(m.state, MENU_CHOOSE);
  act = feed(&m, "m");
  assert_prompt(&act, MENU_PROMPT_MESSAGE);
}

static void test_registered_shows_options(void **state) {
  menu_t m;
  menu_action_t act;

  start_choosing(&m);
  act = feed(&m, "");
  assert_int_equal(act.kind, MENU_ACT_MENU);
}

static void test_message_option_prompts(void **state) {
  static const char *const lines[] = {"m", "M", " m ", "\tM\t"};
  menu_t m;
  menu_action_t act;

  for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
    start_choosing(&m);
    act = feed(&m, lines[i]);
    assert_prompt(&act, MENU_PROMPT_MESSAGE);
    assert_int_equal(m.state, MENU_MESSAGE);
  }
}

static void test_message_is_sent_verbatim(void **state) {
  static const char *const messages[] = {
      "hello", "  spaced out  ",    "x", "m", "f", "X", " m ",
      "",      "\xc3\xa9t\xc3\xa9",
  };
  menu_t m;
  menu_action_t act;

  start_choosing(&m);
  for (size_t i = 0; i < sizeof(messages) / sizeof(messages[0]); i++) {
    act = feed(&m, "m");
    assert_prompt(&act, MENU_PROMPT_MESSAGE);
    act = feed(&m, messages[i]);
    assert_int_equal(act.kind, MENU_ACT_SEND);
    assert_int_equal(act.len, strlen(messages[i]));
    assert_memory_equal(act.text, messages[i], act.len);
    assert_int_equal(m.state, MENU_CHOOSE);
  }
}

static void test_message_text_points_into_line(void **state) {
  static const char line[] = "hi there";
  menu_t m;
  menu_action_t act;

  start_choosing(&m);
  feed(&m, "m");
  menu_feed(&m, line, sizeof(line) - 1, &act);
  assert_int_equal(act.kind, MENU_ACT_SEND);
  assert_ptr_equal(act.text, line);
}

static void test_file_option_asks_owner_then_file(void **state) {
  static const char *const lines[] = {"f", "F", "  f"};
  menu_t m;
  menu_action_t act;

  for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
    start_choosing(&m);
    act = feed(&m, lines[i]);
    assert_prompt(&act, MENU_PROMPT_OWNER);
    assert_int_equal(m.state, MENU_FILE_OWNER);
    act = feed(&m, "bob");
    assert_prompt(&act, MENU_PROMPT_FILE);
    assert_int_equal(m.state, MENU_FILE_NAME);
    act = feed(&m, "notes.txt");
    assert_int_equal(act.kind, MENU_ACT_FILE);
    assert_text(&act, "notes.txt");
    assert_int_equal(act.owner_len, 3);
    assert_string_equal(act.owner, "bob");
    assert_int_equal(m.state, MENU_CHOOSE);
  }
}

/* The owner line's buffer is gone by the time the file name arrives: the
 * menu must have kept its own copy. */
static void test_owner_is_copied(void **state) {
  char line[16];
  menu_t m;
  menu_action_t act;

  start_choosing(&m);
  feed(&m, "f");
  strcpy(line, "carol");
  menu_feed(&m, line, strlen(line), &act);
  memset(line, '#', sizeof(line));
  act = feed(&m, "x");
  assert_int_equal(act.kind, MENU_ACT_FILE);
  assert_string_equal(act.owner, "carol");
  assert_text(&act, "x");
}

static void test_second_file_request_forgets_first_owner(void **state) {
  menu_t m;
  menu_action_t act;

  start_choosing(&m);
  feed(&m, "f");
  feed(&m, "longer-owner");
  feed(&m, "a");
  feed(&m, "f");
  feed(&m, "bo");
  act = feed(&m, "b");
  assert_int_equal(act.kind, MENU_ACT_FILE);
  assert_int_equal(act.owner_len, 2);
  assert_string_equal(act.owner, "bo");
}

/* An owner name that is empty once trimmed ends the request at once, with
 * an empty owner (the client says why), and the next line is a menu choice
 * again, not a file name. */
static void test_empty_owner_ends_request_at_once(void **state) {
  menu_t m;
  menu_action_t act;

  start_choosing(&m);
  feed(&m, "f");
  act = feed(&m, " \t ");
  assert_int_equal(act.kind, MENU_ACT_FILE);
  assert_int_equal(act.owner_len, 0);
  assert_int_equal(act.len, 0);
  assert_int_equal(m.state, MENU_CHOOSE);
  act = feed(&m, "m");
  assert_int_equal(act.kind, MENU_ACT_PROMPT);
  assert_string_equal(act.prompt, MENU_PROMPT_MESSAGE);
}

/* Only leading and trailing ASCII spaces and tabs go; inner ones and other
 * characters stay. */
static void test_owner_and_file_names_are_trimmed(void **state) {
  static const struct {
    const char *owner, *file, *want_owner, *want_file;
  } cases[] = {
      {"bob ", " a.txt ", "bob", "a.txt"},
      {"\t bob\t", "\ta b.txt\t ", "bob", "a b.txt"},
      {"bob", "a  b", "bob", "a  b"},
      {"bob", " \t ", "bob", ""},
      {"\xc2\xa0"
       "bob",
       "x\xc2\xa0",
       "\xc2\xa0"
       "bob",
       "x\xc2\xa0"}, /* U+00A0 */
      {" b o b ", "\rf\r", "b o b", "\rf\r"},
  };
  menu_t m;
  menu_action_t act;

  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    start_choosing(&m);
    feed(&m, "f");
    act = feed(&m, cases[i].owner);
    assert_prompt(&act, MENU_PROMPT_FILE);
    act = feed(&m, cases[i].file);
    assert_int_equal(act.kind, MENU_ACT_FILE);
    assert_int_equal(act.owner_len, strlen(cases[i].want_owner));
    assert_string_equal(act.owner, cases[i].want_owner);
    assert_text(&act, cases[i].want_file);
  }
}

/* Blanks do not count towards the kept length of an owner's name. */
static void test_owner_trimmed_before_truncation(void **state) {
  char owner[MENU_FIELD_MAX + 11];
  menu_t m;
  menu_action_t act;

  memset(owner, ' ', 10);
  memset(owner + 10, 'o', MENU_FIELD_MAX);
  owner[sizeof(owner) - 1] = '\0';
  start_choosing(&m);
  feed(&m, "f");
  feed(&m, owner);
  act = feed(&m, "file");
  assert_int_equal(act.owner_len, MENU_FIELD_MAX);
  assert_memory_equal(act.owner, owner + 10, MENU_FIELD_MAX);
}

static void test_long_owner_is_truncated(void **state) {
  char owner[301];
  menu_t m;
  menu_action_t act;

  memset(owner, 'o', 300);
  owner[300] = '\0';
  start_choosing(&m);
  feed(&m, "f");
  act = feed(&m, owner);
  assert_prompt(&act, MENU_PROMPT_FILE);
  act = feed(&m, "file");
  assert_int_equal(act.kind, MENU_ACT_FILE);
  assert_int_equal(act.owner_len, MENU_FIELD_MAX);
  assert_int_equal(strlen(act.owner), MENU_FIELD_MAX);
  assert_memory_equal(act.owner, owner, MENU_FIELD_MAX);
  assert_text(&act, "file");
}

static void test_exit_option_ends_input(void **state) {
  static const char *const lines[] = {"x", "X", " x\t"};
  static const char *const after[] = {"m", "f", "x", "", "hello"};
  menu_t m;
  menu_action_t act;

  for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
    start_choosing(&m);
    act = feed(&m, lines[i]);
    assert_int_equal(act.kind, MENU_ACT_EXIT);
    assert_int_equal(m.state, MENU_DONE);
    for (size_t j = 0; j < sizeof(after) / sizeof(after[0]); j++) {
      act = feed(&m, after[j]);
      assert_int_equal(act.kind, MENU_ACT_NONE);
    }
    menu_registered(&m);
    menu_rejected(&m);
    act = feed(&m, "m");
    assert_int_equal(act.kind, MENU_ACT_NONE);
    assert_int_equal(m.state, MENU_DONE);
  }
}

static void test_unknown_option_is_echoed(void **state) {
  static const char *const lines[] = {"q", "mm", "xx", "m x", "message", "1"};
  menu_t m;
  menu_action_t act;

  start_choosing(&m);
  for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
    act = feed(&m, lines[i]);
    assert_int_equal(act.kind, MENU_ACT_UNKNOWN);
    assert_text(&act, lines[i]);
    assert_int_equal(m.state, MENU_CHOOSE);
  }
}

static void test_blank_line_shows_menu(void **state) {
  static const char *const lines[] = {"", "  ", "\t"};
  menu_t m;
  menu_action_t act;

  start_choosing(&m);
  for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
    act = feed(&m, lines[i]);
    assert_int_equal(act.kind, MENU_ACT_MENU);
    assert_int_equal(m.state, MENU_CHOOSE);
  }
}

static void test_option_table(void **state) {
  static const struct {
    const char *line;
    int opt;
  } cases[] = {
      {"m", 'm'},     {"M", 'm'},   {"f", 'f'},      {"F", 'f'},   {"x", 'x'},
      {"X", 'x'},     {" m ", 'm'}, {"\tf", 'f'},    {"x  ", 'x'}, {"", 0},
      {"  ", 0},      {"q", 0},     {"mm", 0},       {"xx", 0},    {"m x", 0},
      {"message", 0}, {"exit", 0},  {"\xc3\xa9", 0},
  };

  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    assert_int_equal(menu_option(cases[i].line, strlen(cases[i].line)),
                     cases[i].opt);
}

/* Only len bytes count: what follows them in memory is not part of the
 * line. */
static void test_option_respects_len(void **state) {
  assert_int_equal(menu_option("mx", 1), 'm');
  assert_int_equal(menu_option("f\n", 1), 'f');
  assert_int_equal(menu_option("x", 0), 0);
}

static void test_full_session(void **state) {
  menu_t m;
  menu_action_t act;

  menu_init(&m);
  act = feed(&m, "taken");
  assert_int_equal(act.kind, MENU_ACT_REGISTER);
  menu_rejected(&m);
  act = feed(&m, "dave");
  assert_int_equal(act.kind, MENU_ACT_REGISTER);
  assert_text(&act, "dave");
  menu_registered(&m);
  act = feed(&m, "?");
  assert_int_equal(act.kind, MENU_ACT_UNKNOWN);
  act = feed(&m, "M");
  assert_prompt(&act, MENU_PROMPT_MESSAGE);
  act = feed(&m, "hi all");
  assert_int_equal(act.kind, MENU_ACT_SEND);
  assert_text(&act, "hi all");
  act = feed(&m, "f");
  assert_prompt(&act, MENU_PROMPT_OWNER);
  act = feed(&m, "eve");
  assert_prompt(&act, MENU_PROMPT_FILE);
  act = feed(&m, "a.txt");
  assert_int_equal(act.kind, MENU_ACT_FILE);
  assert_string_equal(act.owner, "eve");
  assert_text(&act, "a.txt");
  act = feed(&m, "x");
  assert_int_equal(act.kind, MENU_ACT_EXIT);
  act = feed(&m, "m");
  assert_int_equal(act.kind, MENU_ACT_NONE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_texts_are_exact),
      cmocka_unit_test(test_first_line_registers_name),
      cmocka_unit_test(test_lines_while_registering_are_ignored),
      cmocka_unit_test(test_rejected_name_asks_again),
      cmocka_unit_test(test_verdict_outside_registration_is_ignored),
      cmocka_unit_test(test_registered_shows_options),
      cmocka_unit_test(test_message_option_prompts),
      cmocka_unit_test(test_owner_and_file_names_are_trimmed),
      cmocka_unit_test(test_empty_owner_ends_request_at_once),
      cmocka_unit_test(test_owner_trimmed_before_truncation),
      cmocka_unit_test(test_message_is_sent_verbatim),
      cmocka_unit_test(test_message_text_points_into_line),
      cmocka_unit_test(test_file_option_asks_owner_then_file),
      cmocka_unit_test(test_owner_is_copied),
      cmocka_unit_test(test_second_file_request_forgets_first_owner),
      cmocka_unit_test(test_long_owner_is_truncated),
      cmocka_unit_test(test_exit_option_ends_input),
      cmocka_unit_test(test_unknown_option_is_echoed),
      cmocka_unit_test(test_blank_line_shows_menu),
      cmocka_unit_test(test_option_table),
      cmocka_unit_test(test_option_respects_len),
      cmocka_unit_test(test_full_session),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
