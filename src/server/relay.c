/* The relay: file bytes piped through the server when the owner cannot
 * accept a connection.
 *
 * When the server arranges a transfer it keeps a *ticket* for the token (60
 * seconds). A requester that cannot reach the owner opens a new connection
 * to the chat port and sends "\x01RELAY <token> fetch"; that claims the
 * ticket (so a token relays once) and creates a relay. The server asks the
 * owner with "\x01RELAY-SERVE <token>"; the owner connects out and sends
 * "\x01RELAY <token> serve"; the server pairs the two legs and copies bytes
 * each way. The file-connection protocol then runs end to end through the
 * pipe, unchanged, so size and SHA-256 are checked by the requester as on
 * a direct connection.
 *
 * Memory per relay is bounded: a leg stops reading while its partner's
 * write queue holds more than RELAY_BUDGET bytes, and resumes on drain.
 * A leg is a client_t, freed in its own close callback; the relay is freed
 * when its last leg detaches.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"

#define RELAY_BUDGET (256 * 1024) /* queued per direction before pausing */
#define RELAY_EARLY_MAX 1024      /* bytes a leg may send before pairing */
#define RELAY_TICKET_MS 60000     /* a token relays within this time */
#define RELAY_TICK_MS 100         /* rate refills and deadline checks */
#define RELAY_MAX_TICKETS 4096    /* oldest tickets go first beyond this */
#define RELAY_IDLE_MS 60000       /* a paired relay moving nothing ends */
#define LEG_FETCH 0
#define LEG_SERVE 1

struct ticket_s {
  ticket_t *next;
  client_t *owner; /* NULL once the owner left */
  uint64_t expires;
  char token[CHAT_TOKEN_LEN + 1];
  char requester[CHAT_NAME_MAX + 1];
  char file[];
};

struct relay_s {
  relay_t *next, *prev;
  server_t *srv;
  client_t *legs[2]; /* fetch and serve legs, NULL when not (yet) open */
  uint64_t deadline; /* pairing deadline, while unpaired */
  uint64_t started;  /* uv_now() when paired */
  uint64_t bytes[2]; /* bytes each leg sent */
  uint64_t active;   /* uv_now() when bytes last moved */
  int64_t allowance; /* bytes the rate limit still allows now */
  unsigned paired : 1;
  unsigned paused[2]; /* leg i stopped reading */
  char *early[2];     /* bytes a leg sent before pairing */
  size_t early_len[2];
  char token[CHAT_TOKEN_LEN + 1];
  char owner[CHAT_NAME_MAX + 1];
  char requester[CHAT_NAME_MAX + 1];
  char *file;
};

static void on_relay_tick(uv_timer_t *t);

void relay_init(server_t *srv) {
  uv_timer_init(srv->loop, &srv->relay_tick);
  srv->relay_tick.data = srv;
  uv_timer_start(&srv->relay_tick, on_relay_tick, RELAY_TICK_MS, RELAY_TICK_MS);
  uv_unref((uv_handle_t *)&srv->relay_tick);
}

/* ---- tickets ------------------------------------------------------------- */

void relay_ticket(server_t *srv, client_t *owner, const char *requester,
                  const char *token, const char *file) {
  size_t n = strlen(file);
  ticket_t *t;

  if (!srv->cfg.relay)
    return;
  t = malloc(sizeof(*t) + n + 1);
  if (t == NULL)
    return; /* no relay for this one: direct still works */
  t->next = NULL;
  t->owner = owner;
  t->expires = uv_now(srv->loop) + RELAY_TICKET_MS;
  memcpy(t->token, token, sizeof(t->token));
  snprintf(t->requester, sizeof(t->requester), "%s", requester);
  memcpy(t->file, file, n + 1);
  if (srv->ntickets >= RELAY_MAX_TICKETS) {
    ticket_t *old = srv->tickets; /* bounded: drop the oldest */
    srv->tickets = old->next;
    if (srv->tickets_tail == old)
      srv->tickets_tail = NULL;
    free(old);
    srv->ntickets--;
  }
  /* Appended: the list stays in expiry order. */
  if (srv->tickets_tail != NULL)
    srv->tickets_tail->next = t;
  else
    srv->tickets = t;
  srv->tickets_tail = t;
  srv->ntickets++;
}

static ticket_t *take_ticket(server_t *srv, const char *token) {
  ticket_t **pp, *t;

  ticket_t *prev = NULL;

  for (pp = &srv->tickets; (t = *pp) != NULL; prev = t, pp = &t->next) {
    if (chat_token_equal(t->token, token)) {
      *pp = t->next;
      if (srv->tickets_tail == t)
        srv->tickets_tail = prev;
      srv->ntickets--;
      return t;
    }
  }
  return NULL;
}

/* ---- legs ---------------------------------------------------------------- */

static void relay_fail_leg(client_t *c, const char *code, const char *text) {
  c->is_leg = 1;
  client_send_own(c, chat_format_control("RELAY-FAIL", "%s %s", code, text));
  client_end(c);
}

static void on_leg_drain(chat_stream_t *s);

/* Copies bytes from leg i to its partner, pausing i when the partner is
 * behind or the rate limit is spent. */
static void pipe_bytes(relay_t *r, int i, const char *data, size_t len) {
  client_t *to = r->legs[1 - i];
  int rc;

  if (to == NULL || chat_stream_is_closing(&to->stream))
    return;
  rc = chat_stream_write_copy(&to->stream, data, len);
  if (rc != 0) {
    client_close(r->legs[i], "relay partner cannot take data");
    return;
  }
  r->bytes[i] += len;
  r->active = uv_now(r->srv->loop);
  if (r->srv->cfg.relay_rate > 0)
    r->allowance -= (int64_t)len;
  if (to->stream.queued > RELAY_BUDGET ||
      (r->srv->cfg.relay_rate > 0 && r->allowance <= 0)) {
    r->paused[i] = 1;
    chat_stream_read_stop(&r->legs[i]->stream);
  }
}

static void on_leg_data(chat_stream_t *s, const char *data, size_t len) {
  client_t *c = (client_t *)s;
  relay_t *r = c->relay;
  int i = c->leg;
  char *p;

  if (r == NULL)
    return;
  if (r->paired) {
    pipe_bytes(r, i, data, len);
    return;
  }
  if (r->early_len[i] + len > RELAY_EARLY_MAX ||
      (p = realloc(r->early[i], r->early_len[i] + len)) == NULL) {
    client_close(c, "relay: too much data before the partner arrived");
    return;
  }
  memcpy(p + r->early_len[i], data, len);
  r->early[i] = p;
  r->early_len[i] += len;
}

/* Resumes a paused leg once what it sent has drained and the rate allows. */
static void resume(relay_t *r, int i) {
  client_t *c = r->legs[i];

  if (!r->paused[i] || c == NULL || chat_stream_is_closing(&c->stream))
    return;
  if (r->legs[1 - i] != NULL &&
      r->legs[1 - i]->stream.queued > RELAY_BUDGET / 2)
    return;
  if (r->srv->cfg.relay_rate > 0 && r->allowance <= 0)
    return;
  r->paused[i] = 0;
  client_read_resume(c);
}

static void on_leg_drain(chat_stream_t *s) {
  client_t *c = (client_t *)s;

  if (c->relay != NULL)
    resume(c->relay, 1 - c->leg); /* the leg that writes into c */
}

static void pair(relay_t *r) {
  r->paired = 1;
  r->started = r->active = uv_now(r->srv->loop);
  r->allowance = (int64_t)(r->srv->cfg.relay_rate / (1000 / RELAY_TICK_MS));
  log_msg("relay of \"%s\" from %s to %s started", r->file, r->owner,
          r->requester);
  for (int i = 0; i < 2; i++) {
    chat_stream_set_drain_cb(&r->legs[i]->stream, on_leg_drain);
    chat_stream_set_max_queue(&r->legs[i]->stream, 0); /* paused instead */
  }
  for (int i = 0; i < 2; i++) {
    if (r->early_len[i] > 0)
      pipe_bytes(r, i, r->early[i], r->early_len[i]);
    free(r->early[i]);
    r->early[i] = NULL;
    r->early_len[i] = 0;
  }
}

static void leg_attach(relay_t *r, client_t *c, int i) {
  r->legs[i] = c;
  c->relay = r;
  c->leg = i;
  c->is_leg = 1;
  limits_registered(c); /* a leg never registers; relay_wait bounds it */
  chat_stream_read_raw(&c->stream, on_leg_data);
}

/* A fetch leg claims its ticket and asks the owner to connect out. */
static void relay_fetch(client_t *c, const char *token) {
  server_t *srv = c->srv;
  ticket_t *t;
  relay_t *r;

  if (srv->nrelays >= srv->cfg.max_relays) {
    /* Refused before the ticket is taken: the token stays good. */
    relay_fail_leg(c, "busy", "too many relays; try again later");
    return;
  }
  t = take_ticket(srv, token);

  if (t == NULL || uv_now(srv->loop) > t->expires) {
    free(t);
    relay_fail_leg(c, "bad-token", "unknown, expired or used token");
    return;
  }
  r = t->owner != NULL ? calloc(1, sizeof(*r)) : NULL;
  if (r != NULL && (r->file = strdup(t->file)) == NULL) {
    free(r);
    r = NULL;
  }
  if (r == NULL) {
    relay_fail_leg(c, t->owner == NULL ? "owner-left" : "busy",
                   t->owner == NULL ? "the owner left the chat"
                                    : "the server is out of memory");
    free(t);
    return;
  }
  r->srv = srv;
  r->deadline = uv_now(srv->loop) + srv->cfg.relay_wait_s * 1000ull;
  memcpy(r->token, token, sizeof(r->token));
  snprintf(r->owner, sizeof(r->owner), "%s", t->owner->name);
  snprintf(r->requester, sizeof(r->requester), "%s", t->requester);
  r->next = srv->relays;
  if (srv->relays != NULL)
    srv->relays->prev = r;
  srv->relays = r;
  srv->nrelays++;
  leg_attach(r, c, LEG_FETCH);
  client_send_own(t->owner, chat_format_control("RELAY-SERVE", "%s", token));
  free(t);
}

static void relay_serve(client_t *c, const char *token) {
  relay_t *r;

  for (r = c->srv->relays; r != NULL; r = r->next)
    if (!r->paired && r->legs[LEG_SERVE] == NULL &&
        r->legs[LEG_FETCH] != NULL && chat_token_equal(r->token, token))
      break;
  if (r == NULL) {
    relay_fail_leg(c, "bad-token", "no relay is waiting for that token");
    return;
  }
  leg_attach(r, c, LEG_SERVE);
  pair(r);
}

int relay_leg(client_t *c, const char *args, size_t len) {
  const char *f[2];
  size_t fl[2];
  char token[CHAT_TOKEN_LEN + 1];

  if (chat_args_split(args, len, 2, 0, f, fl) != 2 ||
      chat_token_check(f[0], fl[0]) != 0)
    return CHAT_EPROTO;
  if (!c->srv->cfg.relay) {
    relay_fail_leg(c, "disabled", "this server does not relay");
    return 0;
  }
  memcpy(token, f[0], CHAT_TOKEN_LEN);
  token[CHAT_TOKEN_LEN] = '\0';
  if (fl[1] == 5 && memcmp(f[1], "fetch", 5) == 0)
    relay_fetch(c, token);
  else if (fl[1] == 5 && memcmp(f[1], "serve", 5) == 0)
    relay_serve(c, token);
  else
    return CHAT_EPROTO;
  return 0;
}

/* A leg finished sending (EOF): pass the end on once the partner has
 * written everything. */
void relay_leg_eof(client_t *c) {
  relay_t *r = c->relay;
  client_t *to = r != NULL ? r->legs[1 - c->leg] : NULL;

  if (r != NULL && r->paired && to != NULL &&
      !chat_stream_is_closing(&to->stream))
    client_end(to);
}

static void relay_free(relay_t *r) {
  server_t *srv = r->srv;
  double secs = r->paired ? (uv_now(srv->loop) - r->started) / 1000.0 : 0;

  if (r->paired)
    log_msg("relay of \"%s\" from %s to %s ended: %llu bytes in %.2f s",
            r->file, r->owner, r->requester,
            (unsigned long long)r->bytes[LEG_SERVE], secs);
  else
    log_msg("relay of \"%s\" from %s to %s never paired", r->file, r->owner,
            r->requester);
  if (r->prev != NULL)
    r->prev->next = r->next;
  else
    srv->relays = r->next;
  if (r->next != NULL)
    r->next->prev = r->prev;
  srv->nrelays--;
  free(r->early[0]);
  free(r->early[1]);
  free(r->file);
  free(r);
}

/* A leg's connection is closed (from its close callback). */
void relay_leg_closed(client_t *c) {
  relay_t *r = c->relay;
  client_t *other;

  if (r == NULL)
    return;
  r->legs[c->leg] = NULL;
  c->relay = NULL;
  other = r->legs[1 - c->leg];
  if (other != NULL) {
    /* An abrupt end on one side ends the other; a graceful one was passed
     * on by relay_leg_eof() and is flushing. */
    if (!chat_stream_is_closing(&other->stream))
      client_close(other, "relay partner disconnected");
    return;
  }
  relay_free(r);
}

/* ---- ticks ----------------------------------------------------------------
 */

static void on_relay_tick(uv_timer_t *tm) {
  server_t *srv = tm->data;
  uint64_t now = uv_now(srv->loop);
  int64_t refill = (int64_t)(srv->cfg.relay_rate / (1000 / RELAY_TICK_MS));
  ticket_t *t;
  relay_t *r, *next;

  while ((t = srv->tickets) != NULL && t->expires < now) {
    srv->tickets = t->next;
    if (srv->tickets_tail == t)
      srv->tickets_tail = NULL;
    srv->ntickets--;
    free(t);
  }
  for (r = srv->relays; r != NULL; r = next) {
    next = r->next;
    if (!r->paired && now > r->deadline && r->legs[LEG_FETCH] != NULL &&
        !chat_stream_is_closing(&r->legs[LEG_FETCH]->stream)) {
      relay_fail_leg(r->legs[LEG_FETCH], "timeout",
                     "the owner did not connect to the relay");
      continue;
    }
    if (r->paired && now - r->active > RELAY_IDLE_MS) {
      /* A side that stopped reading holds its partner paused forever:
       * free the slot. Closing one leg closes the other. */
      for (int i = 0; i < 2; i++)
        if (r->legs[i] != NULL &&
            !chat_stream_is_closing(&r->legs[i]->stream)) {
          client_close(r->legs[i], "relay idle for 60 s");
          break;
        }
      continue;
    }
    if (r->paired && srv->cfg.relay_rate > 0) {
      r->allowance += refill;
      if (r->allowance > refill)
        r->allowance = refill; /* no bursts beyond one tick's worth */
      resume(r, LEG_FETCH);
      resume(r, LEG_SERVE);
    }
  }
}

void relay_forget_owner(client_t *owner) {
  for (ticket_t *t = owner->srv->tickets; t != NULL; t = t->next)
    if (t->owner == owner)
      t->owner = NULL;
}

void relay_stop(server_t *srv) {
  ticket_t *t;

  while ((t = srv->tickets) != NULL) {
    srv->tickets = t->next;
    free(t);
  }
  srv->tickets_tail = NULL;
  srv->ntickets = 0;
  uv_close((uv_handle_t *)&srv->relay_tick, NULL);
}
