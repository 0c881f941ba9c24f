/* The chat client: see client.h.
 *
 * Three streams share one loop: stdin (lines into the menu), the server
 * connection (lines to stdout), and stdout. Typed lines are processed in
 * order; while the server has not yet answered our name they wait in a
 * bounded queue, so a script that pipes everything at once behaves like a
 * person typing.
 */
#include "client.h"
#include "trust.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct input_line_s {
  input_line_t *next;
  size_t len; /* SIZE_MAX marks a line that was too long to keep */
  char data[];
};

#define LINE_TOO_LONG ((size_t)-1)
#define OUT_POLL_MS 20

#define client_of(s, field)                                                    \
  ((client_t *)((char *)(s)-offsetof(client_t, field)))

static void client_exit(client_t *c, int code);
static void drain_input(client_t *c);

/* ---- output ------------------------------------------------------------- */

static void on_out_poll(uv_timer_t *t);

/* The only raw write to stdout: callers make b safe first. */
static void out(client_t *c, chat_buf_t *b) {
  int rc;

  if (b == NULL)
    return;
  rc = chat_stream_write(&c->out, b);
  chat_buf_unref(b);
  if (rc != 0)
    return; /* stdout is gone: nothing left to tell the user */
  if (c->out.queued > CLIENT_STDOUT_MAX && c->connected && !c->exiting) {
    /* The reader of our stdout is slow: stop taking chat from the server
     * until it catches up, so our memory stays bounded. */
    chat_stream_read_stop(&c->server);
    uv_timer_start(&c->timer, on_out_poll, OUT_POLL_MS, OUT_POLL_MS);
  }
}

void client_print_constant_(client_t *c, const char *s, size_t len) {
  out(c, chat_buf_from(s, len));
}

void client_printf(client_t *c, const char *fmt, ...) {
  va_list ap;
  chat_buf_t *b;

  va_start(ap, fmt);
  b = chat_vformat_safe(fmt, ap);
  va_end(ap);
  out(c, b);
}

void client_print_text(client_t *c, const char *text, size_t len) {
  out(c, chat_safe_line(text, len));
}

void client_eprintf(const char *fmt, ...) {
  va_list ap;
  chat_buf_t *b;

  va_start(ap, fmt);
  b = chat_vformat_safe(fmt, ap);
  va_end(ap);
  if (b == NULL)
    return;
  fwrite(b->data, 1, b->len, stderr);
  chat_buf_unref(b);
}

static void on_server_line(chat_stream_t *s, const char *line, size_t len);
static void on_server_event(chat_stream_t *s, int status);

static void on_out_poll(uv_timer_t *t) {
  client_t *c = t->data;

  if (c->out.queued > CLIENT_STDOUT_MAX / 2)
    return;
  uv_timer_stop(t);
  if (c->connected && !c->exiting)
    chat_stream_read_start(&c->server, on_server_line, on_server_event);
}

void client_send_line(client_t *c, const char *s, size_t len) {
  chat_buf_t *b = chat_buf_new(len + 1);
  int rc;

  if (b == NULL)
    return;
  memcpy(b->data, s, len);
  b->data[len] = '\n';
  rc = chat_stream_write(&c->server, b);
  chat_buf_unref(b);
  if (rc != 0 && rc != CHAT_ECLOSED)
    client_eprintf("chat-client: cannot send: %s", chat_strerror(rc));
  if (c->server.queued > CLIENT_SEND_MAX && !c->send_blocked) {
    /* The server reads us slowly (flood control): stop reading stdin so
     * a piped file cannot pile up in memory; resumed on drain. */
    c->send_blocked = 1;
    chat_stream_read_stop(&c->in);
  }
}

/* ---- the menu ------------------------------------------------------------ */

static void ask_name(client_t *c) {
  if (c->interactive)
    client_print_literal(c, MENU_PROMPT_NAME);
}

#define NAME_RULE "use 1-32 characters from A-Z a-z 0-9 _ . -"
#define NAME_SHOWN_MAX 64 /* bytes of a refused name repeated back */

/* Standard input is no terminal, so nobody can answer "send another name":
 * says why the name was refused and leaves with status 1. */
static void name_refused(client_t *c, const char *name, size_t len,
                         const char *reason, size_t reason_len) {
  client_eprintf("chat-client: the name \"%.*s%s\" was refused: %.*s",
                 (int)(len < NAME_SHOWN_MAX ? len : NAME_SHOWN_MAX), name,
                 len > NAME_SHOWN_MAX ? "..." : "", (int)reason_len, reason);
  client_exit(c, 1);
}

static void do_register(client_t *c, const char *name, size_t len) {
  if (chat_name_check(name, len) != 0) {
    if (c->interactive) {
      client_print_literal(c, "invalid name: " NAME_RULE "\n");
      menu_rejected(&c->menu);
      ask_name(c);
      return;
    }
    name_refused(c, name, len, NAME_RULE, strlen(NAME_RULE));
    return;
  }
  client_send_line(c, name, len);
  snprintf(c->name, sizeof(c->name), "%.*s", (int)len, name);
  c->waiting = 1; /* hold further input until the server answers */
}

static void do_send(client_t *c, const char *text, size_t len) {
  int rc = chat_text_check(text, len);

  if (rc == CHAT_EEMPTY)
    client_print_literal(c, "empty message not sent\n");
  else if (rc != 0)
    client_print_literal(c, "message not sent: it holds control characters "
                            "or invalid UTF-8\n");
  else
    client_send_line(c, text, len);
  client_print_literal(c, MENU_TEXT);
}

/* The menu's prompts are its own constants; each is printed from its
 * literal. */
static void show_prompt(client_t *c, const char *prompt) {
  if (strcmp(prompt, MENU_PROMPT_MESSAGE) == 0)
    client_print_literal(c, MENU_PROMPT_MESSAGE);
  else if (strcmp(prompt, MENU_PROMPT_OWNER) == 0)
    client_print_literal(c, MENU_PROMPT_OWNER);
  else if (strcmp(prompt, MENU_PROMPT_FILE) == 0)
    client_print_literal(c, MENU_PROMPT_FILE);
  else if (strcmp(prompt, MENU_PROMPT_NAME) == 0)
    client_print_literal(c, MENU_PROMPT_NAME);
}

static void process_line(client_t *c, const char *line, size_t len) {
  menu_action_t act;
  char shown[64];

  if (len == LINE_TOO_LONG) {
    client_print_literal(c, "input line too long; ignored\n");
    if (menu_cancel(&c->menu))
      client_print_literal(c, MENU_TEXT);
    return;
  }
  menu_feed(&c->menu, line, len, &act);
  switch (act.kind) {
  case MENU_ACT_NONE:
    break;
  case MENU_ACT_REGISTER:
    do_register(c, act.text, act.len);
    break;
  case MENU_ACT_PROMPT:
    show_prompt(c, act.prompt);
    break;
  case MENU_ACT_MENU:
    client_print_literal(c, MENU_TEXT);
    break;
  case MENU_ACT_UNKNOWN:
    /* Sanitised first so that a NUL shows as ^@ rather than ending %s. */
    chat_sanitize(act.text, act.len < 12 ? act.len : 12, shown, sizeof(shown));
    client_printf(c, "unknown option '%s%s'", shown, act.len > 12 ? "..." : "");
    client_print_literal(c, MENU_TEXT);
    break;
  case MENU_ACT_SEND:
    do_send(c, act.text, act.len);
    break;
  case MENU_ACT_FILE:
    /* The menu comes back at once; the outcome is printed when known. */
    fetch_request(c, act.owner, act.owner_len, act.text, act.len);
    client_print_literal(c, MENU_TEXT);
    break;
  case MENU_ACT_EXIT:
    client_exit(c, 0);
    break;
  }
}

/* ---- standard input ------------------------------------------------------ */

static void on_input_line(chat_stream_t *s, const char *line, size_t len);
static void on_input_event(chat_stream_t *s, int status);

static void enqueue(client_t *c, const char *line, size_t len) {
  size_t n = len == LINE_TOO_LONG ? 0 : len;
  input_line_t *l = malloc(sizeof(*l) + n);

  if (l == NULL)
    return;
  l->next = NULL;
  l->len = len;
  memcpy(l->data, line, n);
  if (c->queue_tail != NULL)
    c->queue_tail->next = l;
  else
    c->queue_head = l;
  c->queue_tail = l;
  c->queued_bytes += n + sizeof(*l);
  if (c->queued_bytes > CLIENT_INPUT_QUEUE_MAX)
    chat_stream_read_stop(&c->in); /* resumed once the queue drains */
}

static void take_line(client_t *c, const char *line, size_t len) {
  if (c->exiting)
    return;
  if (c->waiting || c->send_blocked || c->queue_head != NULL)
    enqueue(c, line, len);
  else
    process_line(c, line, len);
}

static void on_input_line(chat_stream_t *s, const char *line, size_t len) {
  take_line(client_of(s, in), line, len);
}

static void on_input_event(chat_stream_t *s, int status) {
  client_t *c = client_of(s, in);

  if (status == CHAT_ELINE) {
    take_line(c, NULL, LINE_TOO_LONG);
    return;
  }
  /* An error (UV_ENOMEM when bytes read could not be kept) is no end of
   * input: what was typed after the lines already taken is lost, so say
   * so and leave with status 1 once those lines are done. */
  if (status != UV_EOF) {
    client_eprintf("chat-client: standard input: %s", chat_strerror(status));
    c->input_failed = 1;
  }
  c->input_eof = 1;
  drain_input(c);
}

/* Processes typed-ahead lines until the queue is empty or we must wait. */
static void drain_input(client_t *c) {
  input_line_t *l;

  while (!c->waiting && !c->exiting && !c->send_blocked &&
         (l = c->queue_head) != NULL) {
    c->queue_head = l->next;
    if (c->queue_head == NULL)
      c->queue_tail = NULL;
    c->queued_bytes -= (l->len == LINE_TOO_LONG ? 0 : l->len) + sizeof(*l);
    process_line(c, l->data, l->len);
    free(l);
  }
  if (c->exiting || c->waiting || c->send_blocked)
    return;
  if (c->input_eof) {
    /* end of input is the same as 'x'; a broken input is a failure */
    client_exit(c, c->input_failed ? 1 : 0);
    return;
  }
  chat_stream_read_start(&c->in, on_input_line, on_input_event);
}

static void free_queue(client_t *c) {
  input_line_t *l;

  while ((l = c->queue_head) != NULL) {
    c->queue_head = l->next;
    free(l);
  }
  c->queue_tail = NULL;
  c->queued_bytes = 0;
}

/* ---- the server ---------------------------------------------------------- */

static int is_welcome(const chat_line_t *l) {
  return l->kind == CHAT_LINE_NOTICE && l->text_len >= 8 &&
         memcmp(l->text, "welcome ", 8) == 0;
}

/* Why the server refused our name, in our words for the codes of
 * docs/PROTOCOL.md; for another code its own text without the advice to
 * send another name, which a script cannot follow. */
static const char *refusal_reason(const chat_line_t *l, size_t *len) {
  static const struct {
    const char *code, *reason;
  } map[] = {
      {"name-invalid", NAME_RULE},
      {"name-taken", "someone in the chat already uses it (names are "
                     "compared ignoring case)"},
      {"server-full", "the server is full; try again later"},
      {"too-many-connections", "too many connections from this address"},
      {"register-timeout", "the server waited too long for it"},
  };
  static const char advice[] = "send another name";
  const char *t = l->text;
  size_t n = l->text_len, a = sizeof(advice) - 1;

  for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
    if (strlen(map[i].code) == l->word_len &&
        memcmp(map[i].code, l->word, l->word_len) == 0) {
      *len = strlen(map[i].reason);
      return map[i].reason;
    }
  if (n >= a && memcmp(t + n - a, advice, a) == 0) {
    n -= a;
    while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == ';' || t[n - 1] == ',' ||
                     t[n - 1] == '.' || t[n - 1] == ':'))
      n--;
  }
  if (n == 0) { /* no text: the code is all there is */
    t = l->word;
    n = l->word_len;
  }
  if (n == 0) {
    t = "no reason given";
    n = strlen(t);
  }
  if (n > 200)
    n = 200;
  *len = n;
  return t;
}

static void on_name_answer(client_t *c, const chat_line_t *l, const char *line,
                           size_t len) {
  if (is_welcome(l)) {
    char fp[32 + CHAT_TLS_FP_MAX];
    int n = snprintf(fp, sizeof(fp), "%cFILEPORT %d%s%s", CHAT_CONTROL_CHAR,
                     c->serving ? c->files.port : 0,
                     c->cfg.file_fp[0] ? " " : "", c->cfg.file_fp);
    client_send_line(c, fp, (size_t)n);
    client_print_text(c, line, len);
    menu_registered(&c->menu);
    c->waiting = 0;
    client_print_literal(c, MENU_TEXT);
    drain_input(c);
    return;
  }
  if (l->kind != CHAT_LINE_ERROR) {
    client_print_text(c, line, len);
    return;
  }
  if (!c->interactive) {
    size_t n;
    const char *why = refusal_reason(l, &n);
    name_refused(c, c->name, strlen(c->name), why, n);
    return;
  }
  client_print_text(c, line, len);
  menu_rejected(&c->menu);
  c->waiting = 0;
  ask_name(c);
  drain_input(c);
}

static void on_server_line(chat_stream_t *s, const char *line, size_t len) {
  client_t *c = client_of(s, server);
  chat_line_t l;

  if (c->exiting)
    return;
  chat_line_parse(line, len, &l);
  if (c->waiting && c->menu.state == MENU_REGISTERING) {
    on_name_answer(c, &l, line, len);
    return;
  }
  if (l.kind == CHAT_LINE_CONTROL) {
    if (l.word_len == 5 && memcmp(l.word, "SERVE", 5) == 0)
      serve_on_serve(c, l.text, l.text_len);
    else if (l.word_len == 11 && memcmp(l.word, "RELAY-SERVE", 11) == 0)
      serve_on_relay(c, l.text, l.text_len);
    else
      fetch_on_reply(c, &l);
    return; /* control lines are for us, never shown */
  }
  client_print_text(c, line, len);
}

static void on_server_drain(chat_stream_t *s) {
  client_t *c = client_of(s, server);

  if (!c->send_blocked)
    return;
  c->send_blocked = 0;
  drain_input(c); /* resumes reading stdin unless something else waits */
}

static void on_server_event(chat_stream_t *s, int status) {
  client_t *c = client_of(s, server);

  if (status == CHAT_ELINE) {
    client_print_literal(c, "(a line from the server was too long to show)\n");
    return;
  }
  if (c->exiting)
    return;
  if (status == UV_EOF)
    client_eprintf("chat-client: server closed the connection");
  else
    client_eprintf("chat-client: connection to the server lost: %s",
                   chat_strerror(status));
  client_exit(c, 1);
}

/* ---- start and exit ------------------------------------------------------ */

static void on_stream_closed(chat_stream_t *s) {
  client_t *c = s->data;

  if (s == &c->server)
    c->server_open = 0;
  if (--c->open_streams == 0 && !uv_is_closing((uv_handle_t *)&c->timer))
    uv_close((uv_handle_t *)&c->timer, NULL);
}

static void on_exit_grace(uv_timer_t *t) {
  client_t *c = t->data;

  /* Someone is not reading what we still have to write (or the server is
   * still being connected to): stop waiting. */
  if (c->server_open)
    chat_stream_close(&c->server, on_stream_closed);
  chat_stream_close(&c->out, on_stream_closed);
}

/* Leaves: goodbye on success, then every stream is flushed and closed. */
static void client_exit(client_t *c, int code) {
  if (c->exiting)
    return;
  c->exiting = 1;
  c->exit_code = code;
  free_queue(c);
  fetch_stop(c); /* temporary files are removed */
  serve_stop(c);
  uv_close((uv_handle_t *)&c->tick, NULL);
  uv_close((uv_handle_t *)&c->sigint, NULL);
  uv_close((uv_handle_t *)&c->sigterm, NULL);
  if (code == 0)
    client_print_literal(c, MENU_GOODBYE);
  chat_stream_close(&c->in, on_stream_closed);
  if (c->connected)
    chat_stream_end(&c->server, on_stream_closed);
  chat_stream_end(&c->out, on_stream_closed);
  uv_timer_stop(&c->timer);
  uv_timer_start(&c->timer, on_exit_grace, CLIENT_EXIT_GRACE_MS, 0);
  uv_unref((uv_handle_t *)&c->timer);
}

/* Ctrl-C or a kill: leave as with 'x', so partial downloads are removed. */
static void on_signal(uv_signal_t *sig, int signum) {
  client_exit(sig->data, 0);
}

static void on_tick(uv_timer_t *t) {
  client_t *c = t->data;
  uint64_t now = uv_now(c->loop);

  serve_tick(c, now);
  fetch_tick(c, now);
}

/* The TLS handshake with the server ended: trust it, or leave before
 * anything we typed (our name included) goes out. */
static void on_server_tls(chat_stream_t *s, int status) {
  client_t *c = client_of(s, server);
  chat_tls_peer_t p;

  if (status != 0) {
    client_eprintf("chat-client: TLS with %s port %d failed: %s (is it a "
                   "TLS server?)",
                   c->cfg.host, c->cfg.port, chat_strerror(status));
    return; /* the event callback ends the client */
  }
  if (chat_stream_tls_peer(s, &p) != 0 || trust_check(c, &p) != 0) {
    c->connected = 0;
    chat_stream_close(s, on_stream_closed);
    client_exit(c, 1);
  }
}

static void on_connected(chat_stream_t *s, int status) {
  client_t *c = client_of(s, server);

  if (status == UV_ECANCELED)
    return; /* we left while connecting; the close callback follows */
  if (status != 0) {
    client_eprintf("chat-client: cannot connect to %s port %d: %s", c->cfg.host,
                   c->cfg.port, chat_strerror(status));
    c->server_open = 0;
    c->open_streams--; /* the connector closed it */
    client_exit(c, 1);
    return;
  }
  c->connected = 1;
  s->data = c;
  if (c->exiting) {
    chat_stream_end(s, on_stream_closed);
    return;
  }
  if (c->cfg.tls_ctx != NULL) {
    int rc =
        chat_stream_start_tls(s, c->cfg.tls_ctx, c->cfg.host, on_server_tls);
    if (rc != 0) {
      client_eprintf("chat-client: cannot start TLS: %s", chat_strerror(rc));
      client_exit(c, 1);
      return;
    }
  }
  chat_stream_read_start(s, on_server_line, on_server_event);
  chat_stream_set_drain_cb(s, on_server_drain);
  ask_name(c);
  chat_stream_read_start(&c->in, on_input_line, on_input_event);
}

int client_start(client_t *c, uv_loop_t *loop, const client_config_t *cfg) {
  int rc;

  memset(c, 0, sizeof(*c));
  c->loop = loop;
  c->cfg = *cfg;
  c->share_real = cfg->share; /* main() resolved it */
  menu_init(&c->menu);
  c->interactive = uv_guess_handle(0) == UV_TTY;
  rc = chat_stream_open_fd(loop, &c->out, 1, 0, 1);
  if (rc != 0)
    return rc;
  c->out.data = c;
  c->open_streams++;
  rc = chat_stream_open_fd(loop, &c->in, 0, 1, CLIENT_INPUT_MAX_LINE);
  if (rc != 0) {
    chat_stream_close(&c->out, on_stream_closed);
    return rc;
  }
  c->in.data = c;
  c->open_streams++;
  uv_timer_init(loop, &c->timer);
  c->timer.data = c;
  uv_timer_init(loop, &c->tick);
  c->tick.data = c;
  uv_timer_start(&c->tick, on_tick, CLIENT_TICK_MS, CLIENT_TICK_MS);
  uv_unref((uv_handle_t *)&c->tick);
  uv_signal_init(loop, &c->sigint);
  uv_signal_init(loop, &c->sigterm);
  c->sigint.data = c->sigterm.data = c;
  uv_signal_start(&c->sigint, on_signal, SIGINT);
  uv_signal_start(&c->sigterm, on_signal, SIGTERM);
  uv_unref((uv_handle_t *)&c->sigint);
  uv_unref((uv_handle_t *)&c->sigterm);
  serve_start(c);
  c->server.data = c; /* kept by chat_connect() */
  rc = chat_connect(loop, &c->server, cfg->host, cfg->port,
                    CLIENT_SERVER_MAX_LINE, on_connected);
  if (rc != 0) {
    client_eprintf("chat-client: cannot connect to %s port %d: %s", cfg->host,
                   cfg->port, chat_strerror(rc));
    client_exit(c, 1);
    return 0;
  }
  c->open_streams++;
  c->server_open = 1;
  return 0;
}
