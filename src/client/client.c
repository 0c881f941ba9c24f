/* The chat client: see client.h.
 *
 * Three streams share one loop: stdin (lines into the menu), the server
 * connection (lines to stdout), and stdout. Typed lines are processed in
 * order; while the server has not yet answered our name they wait in a
 * bounded queue, so a script that pipes everything at once behaves like a
 * person typing.
 */
#include "client.h"

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

static void out(client_t *c, const char *s, size_t len) {
  if (chat_stream_write_copy(&c->out, s, len) != 0)
    return; /* stdout is gone: nothing left to tell the user */
  if (c->out.queued > CLIENT_STDOUT_MAX && c->connected && !c->exiting) {
    /* The reader of our stdout is slow: stop taking chat from the server
     * until it catches up, so our memory stays bounded. */
    chat_stream_read_stop(&c->server);
    uv_timer_start(&c->timer, on_out_poll, OUT_POLL_MS, OUT_POLL_MS);
  }
}

static void outs(client_t *c, const char *s) {
  out(c, s, strlen(s));
}

void client_printf(client_t *c, const char *fmt, ...) {
  char line[2048];
  va_list ap;
  int n;

  va_start(ap, fmt);
  n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  if ((size_t)n > sizeof(line) - 2)
    n = (int)sizeof(line) - 2;
  line[n++] = '\n';
  out(c, line, (size_t)n);
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

/* Prints untrusted text with every control sequence neutralised. */
static void out_untrusted(client_t *c, const char *s, size_t len) {
  char stackbuf[1024];
  size_t cap = CHAT_SANITIZE_MAX(len);
  char *buf = cap <= sizeof(stackbuf) ? stackbuf : malloc(cap + 1);
  size_t n;

  if (buf == NULL)
    return;
  n = chat_sanitize(s, len, buf, cap);
  buf[n++] = '\n';
  out(c, buf, n);
  if (buf != stackbuf)
    free(buf);
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
    fprintf(stderr, "chat-client: cannot send: %s\n", chat_strerror(rc));
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
    outs(c, MENU_PROMPT_NAME);
}

static void do_register(client_t *c, const char *name, size_t len) {
  if (chat_name_check(name, len) != 0) {
    if (c->interactive) {
      outs(c, "invalid name: use 1-32 characters from A-Z a-z 0-9 _ . -\n");
      menu_rejected(&c->menu);
      ask_name(c);
      return;
    }
    fprintf(stderr, "chat-client: invalid name: use 1-32 characters from "
                    "A-Z a-z 0-9 _ . -\n");
    client_exit(c, 1);
    return;
  }
  client_send_line(c, name, len);
  snprintf(c->name, sizeof(c->name), "%.*s", (int)len, name);
  c->waiting = 1; /* hold further input until the server answers */
}

static void do_send(client_t *c, const char *text, size_t len) {
  int rc = chat_text_check(text, len);

  if (rc == CHAT_EEMPTY)
    outs(c, "empty message not sent\n");
  else if (rc != 0)
    outs(c, "message not sent: it holds control characters or invalid "
            "UTF-8\n");
  else
    client_send_line(c, text, len);
  outs(c, MENU_TEXT);
}

static void process_line(client_t *c, const char *line, size_t len) {
  menu_action_t act;
  char shown[64];

  if (len == LINE_TOO_LONG) {
    outs(c, "input line too long; ignored\n");
    if (menu_cancel(&c->menu))
      outs(c, MENU_TEXT);
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
    outs(c, act.prompt);
    break;
  case MENU_ACT_MENU:
    outs(c, MENU_TEXT);
    break;
  case MENU_ACT_UNKNOWN:
    chat_sanitize(act.text, act.len < 12 ? act.len : 12, shown, sizeof(shown));
    out(c, "unknown option '", 16);
    outs(c, shown);
    outs(c, act.len > 12 ? "...'\n" : "'\n");
    outs(c, MENU_TEXT);
    break;
  case MENU_ACT_SEND:
    do_send(c, act.text, act.len);
    break;
  case MENU_ACT_FILE:
    /* The menu comes back at once; the outcome is printed when known. */
    fetch_request(c, act.owner, act.owner_len, act.text, act.len);
    outs(c, MENU_TEXT);
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
  if (status != UV_EOF)
    fprintf(stderr, "chat-client: cannot read standard input: %s\n",
            chat_strerror(status));
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
    client_exit(c, 0); /* end of input is the same as 'x' */
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

static void on_name_answer(client_t *c, const chat_line_t *l, const char *line,
                           size_t len) {
  if (is_welcome(l)) {
    char fp[32];
    int n = snprintf(fp, sizeof(fp), "%cFILEPORT %d", CHAT_CONTROL_CHAR,
                     c->serving ? c->files.port : 0);
    client_send_line(c, fp, (size_t)n);
    out_untrusted(c, line, len);
    menu_registered(&c->menu);
    c->waiting = 0;
    outs(c, MENU_TEXT);
    drain_input(c);
    return;
  }
  if (l->kind != CHAT_LINE_ERROR) {
    out_untrusted(c, line, len);
    return;
  }
  if (!c->interactive) {
    char why[256];
    chat_sanitize(l->text, l->text_len < 60 ? l->text_len : 60, why,
                  sizeof(why));
    fprintf(stderr, "chat-client: name rejected: %s\n", why);
    client_exit(c, 1);
    return;
  }
  out_untrusted(c, line, len);
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
  out_untrusted(c, line, len);
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
    outs(c, "(a line from the server was too long to show)\n");
    return;
  }
  if (c->exiting)
    return;
  if (status == UV_EOF)
    fprintf(stderr, "chat-client: server closed the connection\n");
  else
    fprintf(stderr, "chat-client: connection to the server lost: %s\n",
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
    outs(c, MENU_GOODBYE);
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

static void on_connected(chat_stream_t *s, int status) {
  client_t *c = client_of(s, server);

  if (status == UV_ECANCELED)
    return; /* we left while connecting; the close callback follows */
  if (status != 0) {
    fprintf(stderr, "chat-client: cannot connect to %s port %d: %s\n",
            c->cfg.host, c->cfg.port, chat_strerror(status));
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
    fprintf(stderr, "chat-client: cannot connect to %s port %d: %s\n",
            cfg->host, cfg->port, chat_strerror(rc));
    client_exit(c, 1);
    return 0;
  }
  c->open_streams++;
  c->server_open = 1;
  return 0;
}
