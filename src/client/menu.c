/* The client's menu state machine; see menu.h. */
#include "menu.h"

#include <string.h>

static int is_blank(char c) {
  return c == ' ' || c == '\t';
}

int menu_option(const char *line, size_t len) {
  size_t i = 0;
  int opt = 0;

  while (i < len && is_blank(line[i]))
    i++;
  if (i == len)
    return 0;
  switch (line[i]) {
  case 'm':
  case 'M':
    opt = 'm';
    break;
  case 'f':
  case 'F':
    opt = 'f';
    break;
  case 'x':
  case 'X':
    opt = 'x';
    break;
  default:
    return 0;
  }
  for (i++; i < len; i++)
    if (!is_blank(line[i]))
      return 0;
  return opt;
}

void menu_init(menu_t *m) {
  memset(m, 0, sizeof(*m));
  m->state = MENU_NAME;
}

void menu_registered(menu_t *m) {
  if (m->state == MENU_REGISTERING)
    m->state = MENU_CHOOSE;
}

void menu_rejected(menu_t *m) {
  if (m->state == MENU_REGISTERING)
    m->state = MENU_NAME;
}

static int all_blank(const char *line, size_t len) {
  for (size_t i = 0; i < len; i++)
    if (!is_blank(line[i]))
      return 0;
  return 1;
}

/* Drops leading and trailing blanks (ASCII space and tab only). */
static const char *trim(const char *line, size_t *len) {
  size_t n = *len;

  while (n > 0 && is_blank(line[0]))
    line++, n--;
  while (n > 0 && is_blank(line[n - 1]))
    n--;
  *len = n;
  return line;
}

static void prompt(menu_action_t *act, const char *text) {
  act->kind = MENU_ACT_PROMPT;
  act->prompt = text;
}

static void choose(menu_t *m, const char *line, size_t len,
                   menu_action_t *act) {
  switch (menu_option(line, len)) {
  case 'm':
    m->state = MENU_MESSAGE;
    prompt(act, MENU_PROMPT_MESSAGE);
    break;
  case 'f':
    m->state = MENU_FILE_OWNER;
    prompt(act, MENU_PROMPT_OWNER);
    break;
  case 'x':
    m->state = MENU_DONE;
    act->kind = MENU_ACT_EXIT;
    break;
  default:
    if (all_blank(line, len)) {
      act->kind = MENU_ACT_MENU; /* a bare Enter shows the menu again */
    } else {
      act->kind = MENU_ACT_UNKNOWN;
      act->text = line;
      act->len = len;
    }
  }
}

void menu_feed(menu_t *m, const char *line, size_t len, menu_action_t *act) {
  memset(act, 0, sizeof(*act));
  switch (m->state) {
  case MENU_NAME:
    m->state = MENU_REGISTERING;
    act->kind = MENU_ACT_REGISTER;
    act->text = line;
    act->len = len;
    break;
  case MENU_REGISTERING:
  case MENU_DONE:
    act->kind = MENU_ACT_NONE;
    break;
  case MENU_CHOOSE:
    choose(m, line, len, act);
    break;
  case MENU_MESSAGE:
    m->state = MENU_CHOOSE;
    act->kind = MENU_ACT_SEND;
    act->text = line;
    act->len = len;
    break;
  case MENU_FILE_OWNER:
    line = trim(line, &len);
    m->owner_len = len < MENU_FIELD_MAX ? len : MENU_FIELD_MAX;
    memcpy(m->owner, line, m->owner_len);
    m->owner[m->owner_len] = '\0';
    if (len == 0) {
      /* refused at once: asking for a file name would be a wasted step */
      m->state = MENU_CHOOSE;
      act->kind = MENU_ACT_FILE;
      act->owner = m->owner;
      act->text = "";
      break;
    }
    m->state = MENU_FILE_NAME;
    prompt(act, MENU_PROMPT_FILE);
    break;
  case MENU_FILE_NAME:
    m->state = MENU_CHOOSE;
    act->kind = MENU_ACT_FILE;
    act->owner = m->owner;
    act->owner_len = m->owner_len;
    act->text = trim(line, &len);
    act->len = len;
    break;
  }
}

int menu_cancel(menu_t *m) {
  switch (m->state) {
  case MENU_MESSAGE:
  case MENU_FILE_OWNER:
  case MENU_FILE_NAME:
    m->state = MENU_CHOOSE;
    return 1;
  default:
    return 0;
  }
}
