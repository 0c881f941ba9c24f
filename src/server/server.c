/* The chat server: connections, registration and fan-out.
 *
 * Invariants:
 * - A client is freed only in its stream's close callback.
 * - Nothing closes a client while the hub is delivering: a delivery that
 *   fails dooms the client, and the reaper timer closes it from the loop.
 * - Only registered clients are hub members, so only they receive chat.
 */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define LISTEN_BACKLOG 511
#define SLOW_REASON "slow consumer: send queue over its limit"

/* What server_start() set up, for undoing it when a later step fails. */
enum {
  OPEN_LISTENER = 1 << 0,
  OPEN_XFER = 1 << 1,
  OPEN_RELAY = 1 << 2,
  OPEN_LIMITS = 1 << 3,
  OPEN_BATCH = 1 << 4,
  OPEN_REAPER = 1 << 5,
  OPEN_GRACE = 1 << 6,
  OPEN_LINGER = 1 << 7,
  OPEN_SIGINT = 1 << 8,
  OPEN_SIGTERM = 1 << 9
};

#define client_of_member(m)                                                    \
  ((client_t *)((char *)(m)-offsetof(client_t, member)))

void server_config_init(server_config_t *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->max_line = CHAT_MAX_LINE_DEFAULT;
  cfg->sendq = SERVER_DEFAULT_SENDQ;
  cfg->max_clients = SERVER_DEFAULT_MAX_CLIENTS;
  cfg->relay = 1;
  cfg->max_relays = SERVER_DEFAULT_MAX_RELAYS;
  cfg->relay_wait_s = SERVER_DEFAULT_RELAY_WAIT_S;
  cfg->max_relays_per_user = SERVER_DEFAULT_MAX_RELAYS_PER_USER;
  cfg->max_relays_per_ip = SERVER_DEFAULT_MAX_RELAYS_PER_IP;
  cfg->rate = SERVER_DEFAULT_RATE;
  cfg->burst = SERVER_DEFAULT_BURST;
  cfg->max_per_ip = SERVER_DEFAULT_MAX_PER_IP;
  cfg->register_timeout_s = SERVER_DEFAULT_REGISTER_S;
}

/* ---- sending ------------------------------------------------------------ */

static void on_reaper(uv_timer_t *t);
static void on_client_closed(chat_stream_t *s);
static void leave_chat(client_t *c);

/* Marks c for closing from the loop; safe in the middle of a fan-out. */
static void client_doom(client_t *c, const char *reason) {
  server_t *srv = c->srv;

  if (c->doomed || c->closing || srv->stopping)
    return;
  c->doomed = 1;
  c->listed_doomed = 1;
  c->doom_reason = reason;
  c->next_doomed = srv->doomed;
  srv->doomed = c;
  uv_timer_start(&srv->reaper, on_reaper, 0, 0);
}

void client_send(client_t *c, chat_buf_t *b) {
  int rc;

  if (b == NULL) {
    client_doom(c, "out of memory");
    return;
  }
  rc = chat_stream_write(&c->stream, b);
  if (rc == CHAT_ESENDQ) {
    if (!c->doomed) {
      c->doom_slow = 1; /* the reaper sends it a last line */
      c->doom_queued = c->stream.queued;
    }
    client_doom(c, SLOW_REASON);
  } else if (rc != 0 && rc != CHAT_ECLOSED)
    client_doom(c, chat_strerror(rc));
}

void client_send_own(client_t *c, chat_buf_t *b) {
  client_send(c, b);
  chat_buf_unref(b);
}

static void member_deliver(hub_member_t *m, chat_buf_t *b) {
  client_send(client_of_member(m), b);
}

/* Formats once and hands the same buffer to every other member. */
static void broadcast(server_t *srv, client_t *from, chat_buf_t *b) {
  if (b == NULL)
    return;
  hub_publish(srv->hub, from ? &from->member : NULL, b);
  chat_buf_unref(b);
}

/* ---- lines from a client ------------------------------------------------- */

static void handle_name(client_t *c, const char *line, size_t len) {
  server_t *srv = c->srv;
  size_t others;
  int rc;

  if (chat_name_check(line, len) != 0) {
    client_send_own(
        c, chat_format_error("name-invalid",
                             "names are 1-%d characters from A-Z a-z 0-9 _ . "
                             "-; send another name",
                             CHAT_NAME_MAX));
    return;
  }
  memcpy(c->name, line, len);
  c->name[len] = '\0';
  c->member.name = c->name;
  c->member.name_len = len;
  c->member.deliver = member_deliver;
  rc = hub_join(srv->hub, &c->member);
  if (rc != 0) {
    client_send_own(
        c, chat_format_error("name-taken",
                             "the name \"%s\" is already in use; send another "
                             "name",
                             c->name));
    c->name[0] = '\0';
    return;
  }
  c->registered = 1;
  limits_registered(c);
  others = hub_count(srv->hub) - 1;
  log_msg("#%llu registered as %s", (unsigned long long)c->id, c->name);
  client_send_own(c,
                  chat_format_notice("welcome %s, %zu other user%s online",
                                     c->name, others, others == 1 ? "" : "s"));
  broadcast(srv, c, chat_format_notice("%s joined", c->name));
}

/* Returns 1 when the line answered one of the server's own requests. */
static int handle_control(client_t *c, const char *line, size_t len) {
  chat_line_t cmd;
  char verb[32];
  int rc;

  chat_line_parse(line, len, &cmd);
  if (!c->registered && cmd.word_len == 5 && memcmp(cmd.word, "RELAY", 5) == 0)
    rc = relay_leg(c, cmd.text, cmd.text_len);
  else
    rc = c->registered ? xfer_control(c, &cmd) : CHAT_EPROTO;
  if (rc == 0 || rc == XFER_ANSWERED)
    return rc == XFER_ANSWERED;
  chat_sanitize(cmd.word, cmd.word_len < 16 ? cmd.word_len : 16, verb,
                sizeof(verb));
  if (rc == CHAT_EPROTO)
    client_send_own(
        c, chat_format_error("bad-command", "malformed \"%s\" command%s", verb,
                             c->registered ? "" : " (send a name first)"));
  else
    client_send_own(c,
                    chat_format_error("unknown-command",
                                      "the command \"%s\" is not known", verb));
  return 0;
}

static void handle_text(client_t *c, const char *line, size_t len) {
  int rc = chat_text_check(line, len);

  if (rc == CHAT_EEMPTY)
    return; /* an empty line is no message */
  if (rc != 0) {
    client_send_own(
        c, chat_format_error("bad-text",
                             "message not sent: it holds control characters "
                             "or invalid UTF-8"));
    return;
  }
  broadcast(c->srv, c, chat_format_chat(c->name, strlen(c->name), line, len));
}

/* The first byte was a TLS handshake, and the handshake ended. */
static void on_client_tls(chat_stream_t *s, int status) {
  client_t *c = (client_t *)s;
  chat_tls_peer_t p;

  if (status != 0) {
    log_msg("#%llu TLS handshake failed: %s", (unsigned long long)c->id,
            chat_strerror(status));
    return; /* the event callback closes it */
  }
  chat_stream_tls_peer(s, &p);
  log_msg("#%llu TLS %s %s%s", (unsigned long long)c->id, p.version, p.cipher,
          p.resumed ? " (resumed)" : "");
}

static void on_client_line(chat_stream_t *s, const char *line, size_t len) {
  client_t *c = (client_t *)s;

  int answer = 0;

  if (c->doomed || c->closing || c->is_leg)
    return;
  if (c->srv->cfg.require_tls && !chat_stream_is_tls(s)) {
    client_send_own(c, chat_format_error("tls-required",
                                         "this server takes TLS only; connect "
                                         "with chat-client --tls or openssl "
                                         "s_client"));
    log_msg("#%llu refused: plain connection, TLS required",
            (unsigned long long)c->id);
    client_end(c);
    return;
  }
  if (len > 0 && line[0] == CHAT_CONTROL_CHAR)
    answer = handle_control(c, line, len);
  else if (!c->registered)
    handle_name(c, line, len);
  else
    handle_text(c, line, len);
  /* Charged after the line is handled (it is handled either way; a
   * charge only pauses what follows). An owner's answers to the server's
   * SERVE requests are free: requesters' GETs, each within its own limits,
   * must not use up the owner's lines and so delay everybody's answers. */
  if (!answer && !c->doomed && !c->closing && !c->is_leg)
    limits_line(c);
}

static void on_client_event(chat_stream_t *s, int status) {
  client_t *c = (client_t *)s;

  if (status == CHAT_ELINE) {
    client_send_own(c,
                    chat_format_error("line-too-long",
                                      "line discarded: longer than %zu bytes",
                                      c->srv->cfg.max_line));
    return;
  }
  if (c->is_leg && status == UV_EOF) {
    relay_leg_eof(c); /* a half-close: the relay decides what it ends */
    return;
  }
  client_close(c, status == UV_EOF ? "closed by peer" : chat_strerror(status));
}

void client_end(client_t *c) {
  if (c->closing)
    return;
  c->closing = 1;
  chat_stream_end(&c->stream, on_client_closed);
}

void client_read_resume(client_t *c) {
  chat_stream_read_start(&c->stream, on_client_line, on_client_event);
}

/* ---- connection lifecycle ------------------------------------------------ */

static void client_unlink(client_t *c);
static void linger_unlink(client_t *c);

static void on_client_closed(chat_stream_t *s) {
  client_t *c = (client_t *)s;
  server_t *srv = c->srv;

  leave_chat(c); /* a client ended gracefully never went through close */
  client_unlink(c);
  linger_unlink(c);
  limits_forget(c);
  relay_leg_closed(c);
  if (c->listed_doomed) {
    /* Closed for another reason before the reaper ran: forget it there. */
    client_t **p = &srv->doomed;
    while (*p != c)
      p = &(*p)->next_doomed;
    *p = c->next_doomed;
  }
  free(c);
  if (srv->stopping && srv->nclients == 0) {
    uv_timer_stop(&srv->grace);
    if (!uv_is_closing((uv_handle_t *)&srv->grace))
      uv_close((uv_handle_t *)&srv->grace, NULL);
  }
}

static void client_unlink(client_t *c) {
  server_t *srv = c->srv;

  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    srv->clients = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  c->next = c->prev = NULL;
  srv->nclients--;
}

/* Takes c out of the hub and out of pending transfers; idempotent, so the
 * close callback can make sure of it whichever way c was closed. */
static void leave_chat(client_t *c) {
  if (!c->registered)
    return;
  c->registered = 0;
  xfer_forget(c);
  hub_leave(c->srv->hub, &c->member);
}

/* Marks c closing, logs why and removes it from the chat, telling the
 * others; its connection is still open. */
static void client_leave(client_t *c, const char *reason) {
  server_t *srv = c->srv;

  c->closing = 1;
  if (c->registered) {
    log_msg("#%llu %s disconnected: %s", (unsigned long long)c->id, c->name,
            reason);
    leave_chat(c);
    if (!srv->stopping)
      broadcast(srv, c, chat_format_notice("%s left", c->name));
  } else if (!c->is_leg) {
    log_msg("#%llu disconnected: %s", (unsigned long long)c->id, reason);
  }
}

/* Removes c from the chat and closes its connection now. */
void client_close(client_t *c, const char *reason) {
  if (c->closing)
    return;
  client_leave(c, reason);
  chat_stream_close(&c->stream, on_client_closed);
}

/* ---- slow consumers' last line ------------------------------------------- */

static void on_linger_timer(uv_timer_t *t);

static void linger_link(client_t *c) {
  server_t *srv = c->srv;

  c->lingering = 1;
  c->linger_until = uv_now(srv->loop) + SERVER_LINGER_MS;
  c->lnext = NULL;
  c->lprev = srv->linger_tail;
  if (srv->linger_tail != NULL)
    srv->linger_tail->lnext = c;
  else
    srv->linger_head = c;
  srv->linger_tail = c;
  if (!uv_is_active((uv_handle_t *)&srv->linger) &&
      uv_timer_start(&srv->linger, on_linger_timer, SERVER_LINGER_MS, 0) != 0)
    chat_stream_close(&c->stream, on_client_closed); /* no deadline: now */
}

static void linger_unlink(client_t *c) {
  server_t *srv = c->srv;

  if (!c->lingering)
    return;
  c->lingering = 0;
  if (c->lprev != NULL)
    c->lprev->lnext = c->lnext;
  else
    srv->linger_head = c->lnext;
  if (c->lnext != NULL)
    c->lnext->lprev = c->lprev;
  else
    srv->linger_tail = c->lprev;
  c->lnext = c->lprev = NULL;
}

/* Every linger lasts SERVER_LINGER_MS, so the list is in deadline order. */
static void on_linger_timer(uv_timer_t *t) {
  server_t *srv = t->data;
  uint64_t now = uv_now(srv->loop);
  client_t *c;

  while ((c = srv->linger_head) != NULL && c->linger_until <= now) {
    linger_unlink(c);
    log_msg("#%llu did not take its last line within %d ms; closed",
            (unsigned long long)c->id, SERVER_LINGER_MS);
    chat_stream_close(&c->stream, on_client_closed);
  }
  if (c != NULL &&
      uv_timer_start(t, on_linger_timer, c->linger_until - now, 0) != 0)
    for (; c != NULL; c = srv->linger_head) {
      linger_unlink(c);
      chat_stream_close(&c->stream, on_client_closed);
    }
}

/* A slow consumer leaves the chat and is read no more, but first gets one
 * line saying why, queued past its budget (the only thing that may be),
 * and SERVER_LINGER_MS to take it with the backlog before it; the
 * connection ends when the line is written, or at the deadline. */
static void client_linger(client_t *c, const char *reason) {
  chat_buf_t *b;

  if (c->closing)
    return;
  client_leave(c, reason);
  b = chat_format_error("slow-consumer",
                        "you were disconnected: %zu bytes of output were "
                        "waiting",
                        c->doom_queued);
  chat_stream_set_max_queue(&c->stream, 0);
  if (b != NULL)
    chat_stream_write(&c->stream, b); /* best effort: it may fail */
  chat_buf_unref(b);
  chat_stream_end(&c->stream, on_client_closed);
  linger_link(c);
}

static void on_reaper(uv_timer_t *t) {
  server_t *srv = t->data;
  client_t *c;

  while ((c = srv->doomed) != NULL) {
    srv->doomed = c->next_doomed;
    c->listed_doomed = 0;
    if (c->doom_slow)
      client_linger(c, c->doom_reason);
    else
      client_close(c, c->doom_reason);
  }
}

/* The bare address of the peer, as files are fetched from it. */
static void peer_ip(client_t *c) {
  c->ip[0] = c->src[0] = '\0';
  if (chat_stream_peer_ip(&c->stream, c->ip, sizeof(c->ip)) != 0) {
    c->ip[0] = '\0';
    return;
  }
  chat_source_key(c->ip, c->src, sizeof(c->src));
}

static void on_connection(chat_listener_t *l, int status) {
  server_t *srv = l->data;
  client_t *c;

  if (status < 0) {
    /* Out of descriptors (EMFILE): libuv accepts and drops the connection
     * with its spare descriptor, so nothing spins; log once a second. */
    uint64_t now = uv_now(srv->loop);
    srv->accept_errs++;
    if (now - srv->accept_err_logged >= 1000) {
      log_msg("accept failed: %s (%u times)", chat_strerror(status),
              srv->accept_errs);
      srv->accept_err_logged = now;
      srv->accept_errs = 0;
    }
    return;
  }
  c = calloc(1, sizeof(*c));
  if (c == NULL ||
      chat_stream_init_tcp(srv->loop, &c->stream, srv->cfg.max_line) != 0) {
    log_msg("cannot accept a connection: out of memory");
    free(c);
    return;
  }
  c->srv = srv;
  c->id = ++srv->next_id;
  c->next = srv->clients;
  if (srv->clients != NULL)
    srv->clients->prev = c;
  srv->clients = c;
  srv->nclients++;
  if (chat_listener_accept(l, &c->stream) != 0) {
    client_close(c, "accept failed");
    return;
  }
  chat_stream_set_keepalive(&c->stream, 1, 60);
  chat_stream_set_max_queue(&c->stream, srv->cfg.sendq);
  c->file_port = -1;
  chat_stream_peer(&c->stream, c->peer, sizeof(c->peer));
  peer_ip(c);
  log_msg("#%llu connected from %s", (unsigned long long)c->id, c->peer);
  limits_client_init(c);
  limits_unregistered(c);
  if (limits_ip_add(c) > srv->cfg.max_per_ip && srv->cfg.max_per_ip > 0) {
    client_send_own(c, chat_format_error("too-many-connections",
                                         "%zu connections from your address "
                                         "already",
                                         srv->cfg.max_per_ip));
    log_msg("#%llu refused: too many connections from %s",
            (unsigned long long)c->id, c->ip);
    client_end(c);
    return;
  }
  if (srv->nclients > srv->cfg.max_clients) {
    client_send_own(c, chat_format_error("server-full",
                                         "the server is full (%zu clients); "
                                         "try again later",
                                         srv->cfg.max_clients));
    log_msg("#%llu refused: server full", (unsigned long long)c->id);
    client_end(c);
    return;
  }
  if (srv->cfg.tls_ctx != NULL &&
      chat_stream_sniff_tls(&c->stream, srv->cfg.tls_ctx, on_client_tls) != 0) {
    client_close(c, "out of memory");
    return;
  }
  chat_stream_read_start(&c->stream, on_client_line, on_client_event);
}

/* ---- start and stop ------------------------------------------------------ */

static void on_signal(uv_signal_t *sig, int signum) {
  server_t *srv = sig->data;

  log_msg("received signal %d, shutting down", signum);
  server_stop(srv);
}

static void on_grace_timeout(uv_timer_t *t) {
  server_t *srv = t->data;
  client_t *c, *next;

  log_msg("%zu clients did not close in time; dropping them", srv->nclients);
  for (c = srv->clients; c != NULL; c = next) {
    next = c->next;
    chat_stream_close(&c->stream, on_client_closed);
  }
}

/* Undoes what server_start() did before a step failed; uv_run() finishes
 * the closes. */
static int start_failed(server_t *srv, const char *what, int rc) {
  unsigned o = srv->opened;

  srv->start_error = what;
  srv->opened = 0;
  if (o & OPEN_LISTENER)
    chat_listener_close(&srv->listener, NULL);
  if (o & OPEN_XFER)
    xfer_stop(srv);
  if (o & OPEN_RELAY)
    relay_stop(srv);
  if (o & OPEN_LIMITS)
    limits_stop(srv);
  if (o & OPEN_BATCH)
    chat_batch_stop();
  if (o & OPEN_REAPER)
    uv_close((uv_handle_t *)&srv->reaper, NULL);
  if (o & OPEN_GRACE)
    uv_close((uv_handle_t *)&srv->grace, NULL);
  if (o & OPEN_LINGER)
    uv_close((uv_handle_t *)&srv->linger, NULL);
  if (o & OPEN_SIGINT)
    uv_close((uv_handle_t *)&srv->sigint, NULL);
  if (o & OPEN_SIGTERM)
    uv_close((uv_handle_t *)&srv->sigterm, NULL);
  return rc;
}

/* Initialises a timer of the server; 0 or a libuv error. */
static int open_timer(server_t *srv, uv_timer_t *t, unsigned bit) {
  int rc = uv_timer_init(srv->loop, t);

  if (rc == 0) {
    t->data = srv;
    srv->opened |= bit;
  }
  return rc;
}

/* Initialises and starts a signal handler, unreferenced so that it never
 * keeps the loop alive by itself; 0 or a libuv error. */
static int open_signal(server_t *srv, uv_signal_t *sig, int signum,
                       unsigned bit) {
  int rc = uv_signal_init(srv->loop, sig);

  if (rc != 0)
    return rc;
  sig->data = srv;
  srv->opened |= bit;
  rc = uv_signal_start(sig, on_signal, signum);
  if (rc == 0)
    uv_unref((uv_handle_t *)sig);
  return rc;
}

int server_start(server_t *srv, uv_loop_t *loop, const server_config_t *cfg) {
  int rc;

  memset(srv, 0, sizeof(*srv));
  srv->loop = loop;
  srv->cfg = *cfg;
  srv->hub = hub_local_new();
  if (srv->hub == NULL)
    return start_failed(srv, "cannot create the member table", UV_ENOMEM);
  srv->listener.data = srv;
  rc = chat_listen(loop, &srv->listener, cfg->port, LISTEN_BACKLOG,
                   on_connection);
  if (rc != 0)
    return start_failed(srv, "cannot listen", rc);
  srv->opened |= OPEN_LISTENER;
  srv->port = srv->listener.port;
  if ((rc = xfer_init(srv)) != 0)
    return start_failed(srv, "cannot set up file transfers", rc);
  srv->opened |= OPEN_XFER;
  if ((rc = relay_init(srv)) != 0)
    return start_failed(srv, "cannot set up the relay", rc);
  srv->opened |= OPEN_RELAY;
  if ((rc = limits_init(srv)) != 0)
    return start_failed(srv, "cannot set up the limits", rc);
  srv->opened |= OPEN_LIMITS;
  /* One writev per client per loop iteration. */
  if ((rc = chat_batch_start(loop)) != 0)
    return start_failed(srv, "cannot set up write batching", rc);
  srv->opened |= OPEN_BATCH;
  if ((rc = open_timer(srv, &srv->reaper, OPEN_REAPER)) != 0 ||
      (rc = open_timer(srv, &srv->grace, OPEN_GRACE)) != 0 ||
      (rc = open_timer(srv, &srv->linger, OPEN_LINGER)) != 0)
    return start_failed(srv, "cannot create a timer", rc);
  if ((rc = open_signal(srv, &srv->sigint, SIGINT, OPEN_SIGINT)) != 0 ||
      (rc = open_signal(srv, &srv->sigterm, SIGTERM, OPEN_SIGTERM)) != 0)
    return start_failed(srv, "cannot handle SIGINT and SIGTERM", rc);
  return 0;
}

void server_stop(server_t *srv) {
  client_t *c, *next;
  chat_buf_t *bye;

  if (srv->stopping)
    return;
  srv->stopping = 1;
  chat_listener_close(&srv->listener, NULL);
  uv_close((uv_handle_t *)&srv->sigint, NULL);
  uv_close((uv_handle_t *)&srv->sigterm, NULL);
  uv_close((uv_handle_t *)&srv->reaper, NULL);
  uv_close((uv_handle_t *)&srv->linger, NULL);
  for (c = srv->doomed; c != NULL; c = c->next_doomed)
    c->listed_doomed = 0; /* everyone is closed below anyway */
  srv->doomed = NULL;
  while ((c = srv->linger_head) != NULL)
    linger_unlink(c); /* the grace timer bounds their end now */
  xfer_stop(srv);
  relay_stop(srv);
  limits_stop(srv);
  chat_batch_stop();
  bye = chat_format_notice("server shutting down");
  for (c = srv->clients; c != NULL; c = next) {
    next = c->next;
    if (c->registered)
      hub_leave(srv->hub, &c->member);
    c->registered = 0;
    c->closing = 1;
    if (bye != NULL && !c->is_leg) /* never inject text into a file */
      chat_stream_write(&c->stream, bye);
    chat_stream_end(&c->stream, on_client_closed);
  }
  chat_buf_unref(bye);
  if (srv->nclients == 0) {
    uv_close((uv_handle_t *)&srv->grace, NULL);
  } else if (uv_timer_start(&srv->grace, on_grace_timeout,
                            SERVER_SHUTDOWN_GRACE_MS, 0) == 0) {
    uv_unref((uv_handle_t *)&srv->grace);
  } else {
    on_grace_timeout(&srv->grace); /* no time bound: close them now */
  }
}

void server_free(server_t *srv) {
  if (srv->hub != NULL)
    hub_destroy(srv->hub);
  srv->hub = NULL;
}
