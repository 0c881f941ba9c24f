/* Arranging file transfers: GET from a requester, SERVE to the owner, the
 * owner's SERVE-OK / SERVE-FAIL back to the requester as GET-OK / GET-FAIL.
 *
 * The server never sees file bytes here: it mints a one-time token, asks
 * the owner to honour it, and tells the requester where to present it.
 * Requests waiting for the owner's answer sit on one list in arrival order,
 * which is also deadline order, so one timer expires them all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"

#define XFER_ANSWER_MS 5000 /* how long an owner has to answer SERVE */
#define XFER_MAX_PENDING 16 /* unanswered GETs per requester */
#define XFER_ID_DIGITS 9

struct pending_s {
  pending_t *next;
  client_t *requester;
  client_t *owner;
  uint64_t deadline; /* uv_now() by which the owner must answer */
  char id[XFER_ID_DIGITS + 1];
  char token[CHAT_TOKEN_LEN + 1];
  char file[]; /* the requested name, for logs */
};

static void on_xfer_timer(uv_timer_t *t);

int xfer_init(server_t *srv) {
  srv->xfer_timer.data = srv;
  return uv_timer_init(srv->loop, &srv->xfer_timer);
}

void xfer_stop(server_t *srv) {
  pending_t *p;

  while ((p = srv->pending) != NULL) {
    srv->pending = p->next;
    free(p);
  }
  srv->pending_tail = NULL;
  uv_close((uv_handle_t *)&srv->xfer_timer, NULL);
}

static void get_fail(client_t *c, const char *id, const char *code,
                     const char *text) {
  client_send_own(c,
                  chat_format_control("GET-FAIL", "%s %s %s", id, code, text));
}

static void arm_timer(server_t *srv) {
  uint64_t now = uv_now(srv->loop);

  if (srv->stopping)
    return;
  if (srv->pending == NULL) {
    uv_timer_stop(&srv->xfer_timer);
    return;
  }
  uv_timer_start(
      &srv->xfer_timer, on_xfer_timer,
      srv->pending->deadline > now ? srv->pending->deadline - now : 0, 0);
}

/* Unlinks p (found after prev, NULL for the head) and frees it. */
static void pending_drop(server_t *srv, pending_t *prev, pending_t *p) {
  if (prev != NULL)
    prev->next = p->next;
  else
    srv->pending = p->next;
  if (srv->pending_tail == p)
    srv->pending_tail = prev;
  p->requester->pending_gets--;
  free(p);
}

static void on_xfer_timer(uv_timer_t *t) {
  server_t *srv = t->data;
  uint64_t now = uv_now(srv->loop);
  pending_t *p;
  char q[LOG_QUOTE_MAX(CHAT_FILENAME_MAX)];

  while ((p = srv->pending) != NULL && p->deadline <= now) {
    log_msg("transfer of %s from %s to %s: owner did not answer",
            log_quote(q, sizeof(q), p->file), p->owner->name,
            p->requester->name);
    get_fail(p->requester, p->id, "timeout", "the owner did not answer");
    pending_drop(srv, NULL, p);
  }
  arm_timer(srv);
}

void xfer_forget(client_t *c) {
  server_t *srv = c->srv;
  pending_t *p, *prev = NULL, *next;

  relay_forget(c);
  for (p = srv->pending; p != NULL; p = next) {
    next = p->next;
    if (p->owner == c || p->requester == c) {
      if (p->requester != c)
        get_fail(p->requester, p->id, "owner-left", "the owner left the chat");
      pending_drop(srv, prev, p);
    } else {
      prev = p;
    }
  }
  arm_timer(srv);
}

/* FILEPORT <port> [<key-fingerprint>]: the fingerprint (of the key the
 * owner's file connections are encrypted with) goes to requesters in
 * GET-OK. */
static int do_fileport(client_t *c, const char *args, size_t len) {
  const char *a[2];
  size_t al[2];
  uint64_t port;
  char fp[CHAT_TLS_FP_MAX + 1];
  int n = chat_args_split(args, len, 2, 0, a, al);

  if (n == CHAT_EPROTO)
    n = chat_args_split(args, len, 1, 0, a, al);
  if (n < 1 || chat_parse_u64(a[0], al[0], 5, &port) != 0 || port > 65535)
    return CHAT_EPROTO;
  if (n == 2) {
    if (al[1] != CHAT_TLS_FP_MAX - 1)
      return CHAT_EPROTO;
    memcpy(fp, a[1], al[1]);
    fp[al[1]] = '\0';
    if (chat_tls_fp_parse(fp, c->file_fp) != 0)
      return CHAT_EPROTO;
  } else {
    c->file_fp[0] = '\0';
  }
  c->file_port = (int)port;
  return 0;
}

/* Checks a GET and finds its owner, whose name as registered it sends
 * first (GET-OWNER); on failure answers and returns NULL. */
static client_t *get_owner(client_t *c, const char *id, const char *owner,
                           size_t owner_len, const char *file,
                           size_t file_len) {
  hub_member_t *m;
  client_t *o;

  if (chat_filename_check(file, file_len) != 0) {
    get_fail(c, id, "bad-name", "that file name is not allowed");
    return NULL;
  }
  if (chat_name_check(owner, owner_len) != 0 ||
      (m = hub_find(c->srv->hub, owner, owner_len)) == NULL) {
    get_fail(c, id, "no-such-user", "nobody of that name is in the chat");
    return NULL;
  }
  o = (client_t *)((char *)m - offsetof(client_t, member));
  /* Names match ignoring case: tell the requester the owner's name as
   * registered, before the answer, so it can name the file's source. */
  client_send_own(c, chat_format_control("GET-OWNER", "%s %s", id, o->name));
  if (o == c) {
    get_fail(c, id, "self", "you cannot request a file from yourself");
    return NULL;
  }
  if (o->file_port < 0 || (o->file_port == 0 && !c->srv->cfg.relay)) {
    /* Never announced (a person with nc), or reachable only by a relay
     * that this server does not run. */
    get_fail(c, id, "no-file-port", "the owner does not serve files");
    return NULL;
  }
  if (c->pending_gets >= XFER_MAX_PENDING) {
    get_fail(c, id, "busy", "too many requests waiting for an answer");
    return NULL;
  }
  return o;
}

/* GET <id> <owner> <file> */
static int do_get(client_t *c, const char *args, size_t len) {
  server_t *srv = c->srv;
  const char *f[3];
  size_t fl[3];
  uint64_t idnum;
  char id[XFER_ID_DIGITS + 1];
  client_t *o;
  pending_t *p;

  if (chat_args_split(args, len, 3, 1, f, fl) != 3 ||
      chat_parse_u64(f[0], fl[0], XFER_ID_DIGITS, &idnum) != 0)
    return CHAT_EPROTO;
  memcpy(id, f[0], fl[0]);
  id[fl[0]] = '\0';
  o = get_owner(c, id, f[1], fl[1], f[2], fl[2]);
  if (o == NULL)
    return 0;
  p = malloc(sizeof(*p) + fl[2] + 1);
  if (p == NULL || chat_token_new(p->token) != 0) {
    free(p);
    get_fail(c, id, "busy", "the server cannot arrange a transfer now");
    return 0;
  }
  memcpy(p->id, id, sizeof(id));
  memcpy(p->file, f[2], fl[2]);
  p->file[fl[2]] = '\0';
  p->requester = c;
  p->owner = o;
  p->next = NULL;
  p->deadline = uv_now(srv->loop) + XFER_ANSWER_MS;
  if (srv->pending_tail != NULL)
    srv->pending_tail->next = p;
  else
    srv->pending = p;
  srv->pending_tail = p;
  c->pending_gets++;
  if (srv->pending == p)
    arm_timer(srv);
  client_send_own(
      o, chat_format_control("SERVE", "%s %s %s", p->token, c->name, p->file));
  return 0;
}

/* Finds the pending request with this token that c owns. */
static pending_t *find_pending(client_t *c, const char *token, size_t len,
                               pending_t **prevp) {
  pending_t *p, *prev = NULL;

  if (chat_token_check(token, len) != 0)
    return NULL;
  for (p = c->srv->pending; p != NULL; prev = p, p = p->next) {
    if (p->owner == c && chat_token_equal(p->token, token)) {
      *prevp = prev;
      return p;
    }
  }
  return NULL;
}

/* SERVE-OK <token> */
static int do_serve_ok(client_t *c, const char *args, size_t len) {
  pending_t *p, *prev;
  char q[LOG_QUOTE_MAX(CHAT_FILENAME_MAX)];

  if (chat_token_check(args, len) != 0)
    return CHAT_EPROTO;
  p = find_pending(c, args, len, &prev);
  if (p == NULL)
    return 0; /* expired or already failed: the requester was told */
  log_msg("transfer of %s from %s to %s arranged (%s)",
          log_quote(q, sizeof(q), p->file), c->name, p->requester->name,
          c->file_port > 0 ? "direct" : "relay only");
  relay_ticket(c->srv, c, p->requester, p->token, p->file);
  /* Port 0 tells the requester to go straight to the relay; the owner's
   * file key, when it has one, which the requester pins. */
  client_send_own(p->requester,
                  chat_format_control("GET-OK", "%s %s %d %s%s%s", p->id,
                                      c->ip[0] ? c->ip : "-",
                                      c->file_port > 0 ? c->file_port : 0,
                                      p->token, c->file_fp[0] ? " " : "",
                                      c->file_fp));
  pending_drop(c->srv, prev, p);
  arm_timer(c->srv);
  return XFER_ANSWERED;
}

static int is_code(const char *s, size_t len) {
  if (len == 0 || len > 32)
    return 0;
  for (size_t i = 0; i < len; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '-'))
      return 0;
  return 1;
}

/* SERVE-FAIL <token> <code> <text> */
static int do_serve_fail(client_t *c, const char *args, size_t len) {
  const char *f[3];
  size_t fl[3], n;
  pending_t *p, *prev;
  char code[33], text[256], q[LOG_QUOTE_MAX(CHAT_FILENAME_MAX)];

  if (chat_args_split(args, len, 3, 1, f, fl) != 3 ||
      chat_token_check(f[0], fl[0]) != 0 || !is_code(f[1], fl[1]) ||
      chat_text_check(f[2], fl[2]) != 0)
    return CHAT_EPROTO;
  p = find_pending(c, f[0], fl[0], &prev);
  if (p == NULL)
    return 0;
  memcpy(code, f[1], fl[1]);
  code[fl[1]] = '\0';
  n = fl[2] < 200 ? fl[2] : 200;
  while (n < fl[2] && n > 0 && ((unsigned char)f[2][n] & 0xC0) == 0x80)
    n--; /* cut before a character, not inside one: the text stays UTF-8 */
  snprintf(text, sizeof(text), "%.*s", (int)n, f[2]);
  log_msg("transfer of %s from %s to %s refused: %s",
          log_quote(q, sizeof(q), p->file), c->name, p->requester->name, code);
  get_fail(p->requester, p->id, code, text);
  pending_drop(c->srv, prev, p);
  arm_timer(c->srv);
  return XFER_ANSWERED;
}

/* RELAY-SERVE-FAIL <token> <code> <text>: the owner cannot serve a relay
 * it was asked for. The code is checked but the requester is always told
 * bad-token: the transfer is over whatever the reason. */
static int do_relay_serve_fail(client_t *c, const char *args, size_t len) {
  const char *f[3];
  size_t fl[3];
  char token[CHAT_TOKEN_LEN + 1];

  if (chat_args_split(args, len, 3, 1, f, fl) != 3 ||
      chat_token_check(f[0], fl[0]) != 0 || !is_code(f[1], fl[1]))
    return CHAT_EPROTO;
  memcpy(token, f[0], CHAT_TOKEN_LEN);
  token[CHAT_TOKEN_LEN] = '\0';
  relay_serve_failed(c, token, f[2], fl[2]);
  return 0;
}

int xfer_control(client_t *c, const chat_line_t *cmd) {
  static const struct {
    const char *verb;
    int (*fn)(client_t *, const char *, size_t);
  } verbs[] = {
      {"FILEPORT", do_fileport},
      {"GET", do_get},
      {"SERVE-OK", do_serve_ok},
      {"SERVE-FAIL", do_serve_fail},
      {"RELAY-SERVE-FAIL", do_relay_serve_fail},
  };

  for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
    if (cmd->word_len == strlen(verbs[i].verb) &&
        memcmp(cmd->word, verbs[i].verb, cmd->word_len) == 0)
      return verbs[i].fn(c, cmd->text, cmd->text_len);
  return 1;
}
