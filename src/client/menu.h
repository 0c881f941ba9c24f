/* The client's menu as a pure state machine: lines in, actions out.
 *
 * It does no I/O, so every path of the menu is unit-tested; client.c turns
 * the actions into prompts on stdout and lines to the server.
 */
#ifndef CHAT_CLIENT_MENU_H
#define CHAT_CLIENT_MENU_H

#include <stddef.h>

/* The exact texts of the assignment's client interface. */
#define MENU_TEXT                                                              \
  "Enter an option ('m', 'f', 'x'):\n"                                         \
  "  (M)essage (send)\n"                                                       \
  "  (F)ile (request)\n"                                                       \
  "  e(x)it\n"
#define MENU_PROMPT_NAME "What is your name?\n"
#define MENU_PROMPT_MESSAGE "Enter your message:\n"
#define MENU_PROMPT_OWNER "Who owns the file?\n"
#define MENU_PROMPT_FILE "Which file do you want?\n"
#define MENU_GOODBYE "closing your sockets...goodbye\n"

#define MENU_FIELD_MAX 255 /* longest owner name kept between questions */

typedef enum {
  MENU_NAME,        /* waiting for the user name */
  MENU_REGISTERING, /* name sent, waiting for the server's verdict */
  MENU_CHOOSE,      /* waiting for an option letter */
  MENU_MESSAGE,     /* waiting for the message text */
  MENU_FILE_OWNER,  /* waiting for the owner's name */
  MENU_FILE_NAME,   /* waiting for the file name */
  MENU_DONE         /* exit chosen; no more input is taken */
} menu_state;

typedef enum {
  MENU_ACT_NONE,     /* nothing to do (input ignored) */
  MENU_ACT_REGISTER, /* send text as the user name */
  MENU_ACT_PROMPT,   /* print prompt */
  MENU_ACT_MENU,     /* print the menu */
  MENU_ACT_UNKNOWN,  /* not an option: say so (text), then print the menu */
  MENU_ACT_SEND,     /* send text as a chat message, then print the menu */
  MENU_ACT_FILE,     /* request file text from owner, then print the menu */
  MENU_ACT_EXIT      /* say goodbye and leave */
} menu_act_kind;

typedef struct {
  menu_act_kind kind;
  const char *prompt; /* MENU_ACT_PROMPT: one of the MENU_PROMPT_* texts */
  const char *text;   /* REGISTER: name; SEND: message; FILE: file name
                         (without surrounding blanks); UNKNOWN: the option
                         typed */
  size_t len;
  const char *owner; /* MENU_ACT_FILE: the owner's name without surrounding
                        blanks (NUL-terminated); when it is empty the file
                        name was not asked for and text is "" */
  size_t owner_len;
} menu_action_t;

typedef struct {
  /* read-only */
  menu_state state;
  /* private */
  char owner[MENU_FIELD_MAX + 1];
  size_t owner_len;
} menu_t;

void menu_init(menu_t *m);

/* Feeds one input line (no terminator) and fills act with what to do.
 * Pointers in act point into line or into m and are valid until the next
 * call. */
void menu_feed(menu_t *m, const char *line, size_t len, menu_action_t *act);

/* The server accepted the name: the menu comes next. */
void menu_registered(menu_t *m);

/* The server refused the name: the next line is a name again. */
void menu_rejected(menu_t *m);

/* The line being answered was unusable (too long to read): go back to the
 * menu from a message or file question; other states are unchanged. Returns
 * non-zero when the menu should be shown again. */
int menu_cancel(menu_t *m);

/* The option letter a line selects ('m', 'f', 'x', lower case), or 0 when
 * the line is not exactly one option letter (surrounding blanks allowed). */
int menu_option(const char *line, size_t len);

#endif /* CHAT_CLIENT_MENU_H */
