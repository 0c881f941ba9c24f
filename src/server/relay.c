/* The relay: file bytes piped through the server when the owner cannot
 * accept a connection.
 *
 * When the server arranges a transfer it keeps a *ticket* for the token (15
 * seconds; at most RELAY_USER_TICKETS per requester). A requester that cannot
 * reach the owner opens a new connection to the chat port and sends "\x01RELAY
 * <token> fetch"; that claims the ticket (so a token relays once) and creates a
 * relay. The server asks the owner with "\x01RELAY-SERVE <token> <key>", where
 * the key is a fresh secret of this relay that only the owner's chat
 * connection hears (the requester knows the token, so the token cannot
 * prove who opens the serve leg); the owner connects out and sends
 * "\x01RELAY <key> serve"; the server pairs the two legs and copies bytes
 * each way. The file-connection protocol then runs end to end through the
 * pipe, unchanged, so size and SHA-256 are checked by the requester as on
 * a direct connection.
 *
 * Memory per relay is bounded: a leg stops reading while its partner's
 * write queue holds more than RELAY_BUDGET bytes, and resumes on drain.
 * A leg is a client_t, freed in its own close callback; the relay is freed
 * when its last leg detaches.
 *
 * Slots are shared fairly: from the moment its fetch leg is accepted until
 * it is freed, a relay counts against --max-relays and, for its requester
 * only, against --max-relays-per-user (by name) and --max-relays-per-ip
 * (the fetch leg's address). The owner is not charged: whoever opens the
 * fetch legs is the one asking, so one requester cannot use up an owner's
 * share and shut everyone else out of that owner's files (the owner's own
 * client bounds what one requester takes from it). An unpaired leg holds
 * at most RELAY_EARLY_MAX bytes and lives --relay-wait seconds (less if
 * the owner leaves), so hoarding slots costs an attacker as much as it
 * costs the server; a paired relay that moves nothing gives its slot to a
 * new relay after RELAY_EVICT_IDLE_MS when all are taken (evict()), and
 * an IPv6 requester counts by its /64 (chat_source_key()).
 *
 * Ends travel as half-closes: the requester's EOF shuts the owner leg's
 * write side down (after what is queued), and the owner still answers;
 * the owner's EOF ends the requester leg once it has everything. Only an
 * error, a reset or the idle limit closes both at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"

#define RELAY_BUDGET (256 * 1024) /* queued per direction before pausing */
#define RELAY_EARLY_MAX 1024      /* bytes a leg may send before pairing */
#define RELAY_TICKET_MS 15000     /* a token relays within this time */
#define RELAY_TICK_MS 100         /* rate refills and deadline checks */
#define RELAY_MAX_TICKETS 4096    /* tickets kept in all (see make_room()) */
#define RELAY_USER_TICKETS 16     /* tickets kept per requester */
#define RELAY_REASON_MAX 200      /* bytes of an owner's reason passed on */
#define RELAY_IDLE_MS 60000       /* a paired relay moving nothing ends */
/* ...and gives its slot to a new relay after this long, when all are taken */
#define RELAY_EVICT_IDLE_MS 5000
#define LEG_FETCH 0
#define LEG_SERVE 1

struct ticket_s {
  ticket_t *next;
  client_t *owner; /* NULL once the owner left */
  client_t *req;   /* the requester, NULL once it left */
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
  uint64_t active;   /* uv_now() when bytes last moved, in or out */
  uint64_t out;      /* bytes written to the legs, as of the last tick */
  int64_t allowance; /* bytes the rate limit still allows now */
  unsigned paired : 1;
  unsigned evicted : 1; /* closing to make room: no longer counted */
  unsigned paused[2];   /* leg i stopped reading */
  unsigned eof[2];      /* leg i finished sending (read EOF) */
  char *early[2];       /* bytes a leg sent before pairing */
  size_t early_len[2];
  client_t *owner_c; /* the owner's chat connection, NULL once it left */
  char token[CHAT_TOKEN_LEN + 1];
  char key[CHAT_TOKEN_LEN + 1]; /* what the serve leg presents */
  char owner[CHAT_NAME_MAX + 1];
  char requester[CHAT_NAME_MAX + 1];
  char req_src[CHAT_SOURCE_KEY_MAX]; /* the fetch leg's source key */
  char *file;
};

static void on_relay_tick(uv_timer_t *t);

int relay_init(server_t *srv) {
  int rc;

  if ((rc = uv_timer_init(srv->loop, &srv->relay_tick)) != 0)
    return rc;
  srv->relay_tick.data = srv;
  uv_unref((uv_handle_t *)&srv->relay_tick);
  rc = uv_timer_start(&srv->relay_tick, on_relay_tick, RELAY_TICK_MS,
                      RELAY_TICK_MS);
  if (rc != 0)
    uv_close((uv_handle_t *)&srv->relay_tick, NULL);
  return rc;
}

/* ---- tickets ------------------------------------------------------------- */

/* Unlinks t (found after prev, NULL for the head) and returns it. */
static ticket_t *ticket_unlink(server_t *srv, ticket_t *prev, ticket_t *t) {
  if (prev != NULL)
    prev->next = t->next;
  else
    srv->tickets = t->next;
  if (srv->tickets_tail == t)
    srv->tickets_tail = prev;
  if (t->req != NULL)
    t->req->ntickets--;
  srv->ntickets--;
  return t;
}

static void ticket_drop(server_t *srv, ticket_t *prev, ticket_t *t) {
  free(ticket_unlink(srv, prev, t));
}

/* Makes room for one more ticket of req. A requester holding
 * RELAY_USER_TICKETS loses its own oldest. When all RELAY_MAX_TICKETS are
 * taken, the oldest ticket of a requester that left goes, else the oldest
 * of the requester holding the most (req itself on a tie), else the oldest
 * of all: a flood of requests costs the flooder its tickets, never
 * someone else with fewer. */
static void make_room(server_t *srv, client_t *req) {
  ticket_t *t, *prev, *victim = NULL, *vprev = NULL, *mine = NULL;
  ticket_t *mprev = NULL;
  unsigned most = 0;

  if (req->ntickets >= RELAY_USER_TICKETS) {
    for (prev = NULL, t = srv->tickets; t != NULL; prev = t, t = t->next)
      if (t->req == req) {
        ticket_drop(srv, prev, t);
        return;
      }
  }
  if (srv->ntickets < RELAY_MAX_TICKETS || srv->tickets == NULL)
    return;
  for (prev = NULL, t = srv->tickets; t != NULL; prev = t, t = t->next) {
    if (t->req == NULL) {
      ticket_drop(srv, prev, t); /* its requester left: the least loss */
      return;
    }
    if (t->req == req && mine == NULL) {
      mine = t;
      mprev = prev;
    }
    if (t->req->ntickets > most) {
      /* The first ticket seen of a requester is its oldest. */
      most = t->req->ntickets;
      victim = t;
      vprev = prev;
    }
  }
  if (mine != NULL && req->ntickets >= most)
    ticket_drop(srv, mprev, mine);
  else if (victim != NULL)
    ticket_drop(srv, vprev, victim);
  else
    ticket_drop(srv, NULL, srv->tickets);
}

void relay_ticket(server_t *srv, client_t *owner, client_t *req,
                  const char *token, const char *file) {
  size_t n = strlen(file);
  ticket_t *t;

  if (!srv->cfg.relay)
    return;
  t = malloc(sizeof(*t) + n + 1);
  if (t == NULL)
    return; /* no relay for this one: direct still works */
  make_room(srv, req);
  t->next = NULL;
  t->owner = owner;
  t->req = req;
  t->expires = uv_now(srv->loop) + RELAY_TICKET_MS;
  memcpy(t->token, token, sizeof(t->token));
  snprintf(t->requester, sizeof(t->requester), "%s", req->name);
  memcpy(t->file, file, n + 1);
  /* Appended: the list stays in expiry order. */
  if (srv->tickets_tail != NULL)
    srv->tickets_tail->next = t;
  else
    srv->tickets = t;
  srv->tickets_tail = t;
  srv->ntickets++;
  req->ntickets++;
}

/* The ticket for token, and the one before it in *prevp. */
static ticket_t *find_ticket(server_t *srv, const char *token,
                             ticket_t **prevp) {
  ticket_t *t, *prev = NULL;

  for (t = srv->tickets; t != NULL; prev = t, t = t->next)
    if (chat_token_equal(t->token, token)) {
      *prevp = prev;
      return t;
    }
  return NULL;
}

/* ---- limits -------------------------------------------------------------- */

/* Relays (paired or not) that the user name asked for. */
static size_t relays_of_requester(server_t *srv, const char *name) {
  size_t n = 0, len = strlen(name);

  for (relay_t *r = srv->relays; r != NULL; r = r->next)
    if (!r->evicted &&
        chat_name_equal(r->requester, strlen(r->requester), name, len))
      n++;
  return n;
}

/* Relays whose fetch leg came from the source (an IPv4 address or an
 * IPv6 /64, chat_source_key()). */
static size_t relays_of_ip(server_t *srv, const char *src) {
  size_t n = 0;

  if (src[0] == '\0')
    return 0; /* unknown: not counted */
  for (relay_t *r = srv->relays; r != NULL; r = r->next)
    if (!r->evicted && strcmp(r->req_src, src) == 0)
      n++;
  return n;
}

/* Whether a relay of t for a fetch leg from ip would exceed a limit of
 * its requester's; if so, why, in why. The owner is not charged. */
static int over_limit(server_t *srv, const ticket_t *t, const char *ip,
                      char *why, size_t cap) {
  size_t user = srv->cfg.max_relays_per_user, addr = srv->cfg.max_relays_per_ip;

  if (user > 0 && relays_of_requester(srv, t->requester) >= user)
    snprintf(why, cap, "you have %zu relays running", user);
  else if (addr > 0 && relays_of_ip(srv, ip) >= addr)
    snprintf(why, cap, "too many relays from your address");
  else
    return 0;
  return 1;
}

/* ---- legs ---------------------------------------------------------------- */

/* Sends "RELAY-FAIL <code> <text>" and ends the leg. The requester reads
 * it as a file-connection header, so the line is cut to fit
 * CHAT_XFER_HEADER_MAX (on a UTF-8 boundary, with "..." to show the cut):
 * an owner's long or escaped reason must not turn into a protocol error. */
static void relay_fail_leg(client_t *c, const char *code, const char *text) {
  /* bytes of text that fit beside "\001RELAY-FAIL <code> " and "\n" */
  size_t room =
      CHAT_XFER_HEADER_MAX - (sizeof("\001RELAY-FAIL  \n") - 1) - strlen(code);
  size_t len = strlen(text);
  int cut = len > room;

  if (cut) {
    len = room - 3;
    while (len > 0 && ((unsigned char)text[len] & 0xC0) == 0x80)
      len--; /* text[len] starts a character: text[0..len) is whole */
  }
  c->is_leg = 1;
  client_send_own(c, chat_format_control("RELAY-FAIL", "%s %.*s%s", code,
                                         (int)len, text, cut ? "..." : ""));
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
  if (r->early_len[i] + len > RELAY_EARLY_MAX) {
    char why[96];
    snprintf(why, sizeof(why),
             "a relay leg may send at most %d bytes before it is paired",
             RELAY_EARLY_MAX);
    relay_fail_leg(c, "too-much-data", why);
    return;
  }
  if ((p = realloc(r->early[i], r->early_len[i] + len)) == NULL) {
    client_close(c, "relay: out of memory");
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
  char q[LOG_QUOTE_MAX(CHAT_FILENAME_MAX)];
  r->paired = 1;
  r->started = r->active = uv_now(r->srv->loop);
  r->allowance = (int64_t)(r->srv->cfg.relay_rate / (1000 / RELAY_TICK_MS));
  log_msg("relay of %s from %s to %s started", log_quote(q, sizeof(q), r->file),
          r->owner, r->requester);
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
  /* The requester half-closed while it waited: the owner sees the end
   * right after the header. */
  if (r->eof[LEG_FETCH] && r->legs[LEG_SERVE] != NULL &&
      !chat_stream_is_closing(&r->legs[LEG_SERVE]->stream) &&
      chat_stream_shutdown(&r->legs[LEG_SERVE]->stream) != 0)
    client_close(r->legs[LEG_SERVE], "relay: cannot pass the end on");
}

static void leg_attach(relay_t *r, client_t *c, int i) {
  r->legs[i] = c;
  c->relay = r;
  c->leg = i;
  c->is_leg = 1;
  limits_registered(c); /* a leg never registers; relay_wait bounds it */
  chat_stream_read_raw(&c->stream, on_leg_data);
}

/* Closes a relay's legs at once. Closing one leg closes the other; a leg
 * that is ending but cannot flush is closed as it is. */
static void relay_close_legs(relay_t *r, const char *why) {
  for (int i = 0; i < 2; i++) {
    client_t *l = r->legs[i];
    if (l == NULL)
      continue;
    if (!chat_stream_is_closing(&l->stream)) {
      client_close(l, why);
      break;
    }
    chat_stream_close(&l->stream, NULL);
  }
}

/* When all slots are taken, the paired relay that has moved nothing for
 * longest, if that is RELAY_EVICT_IDLE_MS or more, gives its slot to a new
 * one (a pair that connects and then sends nothing would otherwise hold it
 * for RELAY_IDLE_MS). This finds it, or NULL. */
static relay_t *idle_relay(server_t *srv) {
  uint64_t now = uv_now(srv->loop);
  relay_t *r, *oldest = NULL;

  for (r = srv->relays; r != NULL; r = r->next)
    if (r->paired && !r->evicted && now - r->active >= RELAY_EVICT_IDLE_MS &&
        (oldest == NULL || r->active < oldest->active))
      oldest = r;
  return oldest;
}

static void evict(server_t *srv, relay_t *oldest) {
  uint64_t now = uv_now(srv->loop);
  char q[LOG_QUOTE_MAX(CHAT_FILENAME_MAX)];

  log_msg("relay of %s from %s to %s idle for %.1f s: closed to make room",
          log_quote(q, sizeof(q), oldest->file), oldest->owner,
          oldest->requester, (now - oldest->active) / 1000.0);
  oldest->evicted = 1;
  srv->nrelays--;
  relay_close_legs(oldest, "relay idle: its slot went to a new relay");
}

/* A fetch leg claims its ticket and asks the owner to connect out. A leg
 * refused for a limit leaves the ticket in place: the token stays good. */
static void relay_fetch(client_t *c, const char *token) {
  server_t *srv = c->srv;
  ticket_t *t, *prev = NULL;
  relay_t *r, *idle = NULL;
  char why[128];
  char q[LOG_QUOTE_MAX(CHAT_FILENAME_MAX)];

  if (srv->nrelays >= srv->cfg.max_relays && (idle = idle_relay(srv)) == NULL) {
    snprintf(why, sizeof(why), "the server runs %zu relays already",
             srv->cfg.max_relays);
    relay_fail_leg(c, "busy", why);
    return;
  }
  t = find_ticket(srv, token, &prev);
  if (t == NULL || uv_now(srv->loop) > t->expires) {
    if (t != NULL)
      ticket_drop(srv, prev, t);
    relay_fail_leg(c, "bad-token", "unknown, expired or used token");
    return;
  }
  if (t->owner == NULL) {
    ticket_drop(srv, prev, t);
    relay_fail_leg(c, "owner-left", "the owner left the chat");
    return;
  }
  if (over_limit(srv, t, c->src, why, sizeof(why))) {
    log_msg("relay of %s from %s to %s refused: %s",
            log_quote(q, sizeof(q), t->file), t->owner->name, t->requester,
            why);
    relay_fail_leg(c, "busy", why);
    return;
  }
  if (idle != NULL)
    evict(srv, idle); /* only now that this leg will take the slot */
  r = calloc(1, sizeof(*r));
  if (r != NULL &&
      (chat_token_new(r->key) != 0 || (r->file = strdup(t->file)) == NULL)) {
    free(r);
    r = NULL;
  }
  if (r == NULL) {
    relay_fail_leg(c, "busy", "the server cannot arrange a relay now");
    return;
  }
  ticket_unlink(srv, prev, t);
  r->srv = srv;
  r->deadline = uv_now(srv->loop) + srv->cfg.relay_wait_s * 1000ull;
  r->owner_c = t->owner;
  memcpy(r->token, token, sizeof(r->token));
  snprintf(r->owner, sizeof(r->owner), "%s", t->owner->name);
  snprintf(r->requester, sizeof(r->requester), "%s", t->requester);
  snprintf(r->req_src, sizeof(r->req_src), "%s", c->src);
  r->next = srv->relays;
  if (srv->relays != NULL)
    srv->relays->prev = r;
  srv->relays = r;
  srv->nrelays++;
  leg_attach(r, c, LEG_FETCH);
  /* Only the owner's chat connection hears the key: a requester knows the
   * token, so a serve leg must prove it is the owner's with the key. */
  client_send_own(t->owner,
                  chat_format_control("RELAY-SERVE", "%s %s", token, r->key));
  free(t);
}

/* A serve leg pairs with the waiting relay whose key it presents. */
static void relay_serve(client_t *c, const char *key) {
  relay_t *r;

  for (r = c->srv->relays; r != NULL; r = r->next)
    if (!r->paired && r->legs[LEG_SERVE] == NULL &&
        r->legs[LEG_FETCH] != NULL && chat_token_equal(r->key, key))
      break;
  if (r == NULL) {
    relay_fail_leg(c, "bad-token", "no relay is waiting for that key");
    return;
  }
  leg_attach(r, c, LEG_SERVE);
  pair(r);
}

int relay_leg(client_t *c, const char *args, size_t len) {
  const char *f[2];
  size_t fl[2];
  char token[CHAT_TOKEN_LEN + 1]; /* a fetch leg's token, a serve leg's key */

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

/* A leg finished sending (EOF). The requester's end reaches the owner as
 * a half-close, and the owner still answers; the owner's end finishes the
 * relay once the requester has everything. Before pairing the end is only
 * remembered (pair() passes it on); --relay-wait still bounds the leg. */
void relay_leg_eof(client_t *c) {
  relay_t *r = c->relay;
  client_t *to = r != NULL ? r->legs[1 - c->leg] : NULL;

  if (r == NULL) {
    client_close(c, "closed by peer");
    return;
  }
  r->eof[c->leg] = 1;
  if (!r->paired)
    return;
  if (to == NULL || chat_stream_is_closing(&to->stream)) {
    client_close(c, "closed by peer");
    return;
  }
  if (c->leg == LEG_FETCH) {
    if (chat_stream_shutdown(&to->stream) != 0)
      client_close(c, "relay: cannot pass the end on");
    return;
  }
  client_end(to); /* the requester gets the rest, then the end */
  client_close(c, "closed by peer");
}

/* The owner no longer holds the offer: the requester hears it now rather
 * than after --relay-wait, and the slot is free again. */
void relay_serve_failed(client_t *c, const char *token, const char *text,
                        size_t text_len) {
  char safe[CHAT_SANITIZE_MAX(RELAY_REASON_MAX)];
  char why[sizeof(safe) + 64];
  char q[LOG_QUOTE_MAX(CHAT_FILENAME_MAX)];
  relay_t *r;

  for (r = c->srv->relays; r != NULL; r = r->next)
    if (!r->paired && r->owner_c == c && r->legs[LEG_FETCH] != NULL &&
        chat_token_equal(r->token, token))
      break;
  if (r == NULL || chat_stream_is_closing(&r->legs[LEG_FETCH]->stream))
    return; /* not this owner's relay, or over already: nothing to say */
  chat_sanitize(text, text_len < RELAY_REASON_MAX ? text_len : RELAY_REASON_MAX,
                safe, sizeof(safe));
  log_msg("relay of %s from %s to %s: the owner no longer holds it",
          log_quote(q, sizeof(q), r->file), r->owner, r->requester);
  snprintf(why, sizeof(why), "the owner no longer holds this transfer (%s)",
           safe);
  relay_fail_leg(r->legs[LEG_FETCH], "bad-token", why);
}

static void relay_free(relay_t *r) {
  server_t *srv = r->srv;
  double secs = r->paired ? (uv_now(srv->loop) - r->started) / 1000.0 : 0;
  char q[LOG_QUOTE_MAX(CHAT_FILENAME_MAX)];

  if (r->paired)
    log_msg("relay of %s from %s to %s ended: %llu bytes in %.2f s",
            log_quote(q, sizeof(q), r->file), r->owner, r->requester,
            (unsigned long long)r->bytes[LEG_SERVE], secs);
  else
    log_msg("relay of %s from %s to %s never paired",
            log_quote(q, sizeof(q), r->file), r->owner, r->requester);
  if (r->prev != NULL)
    r->prev->next = r->next;
  else
    srv->relays = r->next;
  if (r->next != NULL)
    r->next->prev = r->prev;
  if (!r->evicted)
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

  while ((t = srv->tickets) != NULL && t->expires < now)
    ticket_drop(srv, NULL, t);
  for (r = srv->relays; r != NULL; r = next) {
    next = r->next;
    if (!r->paired && now > r->deadline && r->legs[LEG_FETCH] != NULL &&
        !chat_stream_is_closing(&r->legs[LEG_FETCH]->stream)) {
      relay_fail_leg(r->legs[LEG_FETCH], "timeout",
                     "the owner did not connect to the relay");
      continue;
    }
    if (r->evicted)
      continue; /* closing already */
    if (r->paired) {
      /* Bytes still going out to a slow reader are activity too: a relay
       * paused on its budget or draining after the owner's end is busy. */
      uint64_t out = r->bytes[0] + r->bytes[1];
      for (int i = 0; i < 2; i++)
        if (r->legs[i] != NULL)
          out -= chat_stream_unsent(&r->legs[i]->stream);
      if (out != r->out) {
        r->out = out;
        r->active = now;
      }
    }
    if (r->paired && now - r->active > RELAY_IDLE_MS) {
      /* A side that stopped reading holds its partner paused forever:
       * free the slot. */
      relay_close_legs(r, "relay idle for 60 s");
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

void relay_forget(client_t *c) {
  for (ticket_t *t = c->srv->tickets; t != NULL; t = t->next) {
    if (t->owner == c)
      t->owner = NULL;
    if (t->req == c)
      t->req = NULL;
  }
  c->ntickets = 0;
  /* A fetch leg waiting for this owner would wait --relay-wait for
   * nothing: it hears why now. A paired relay runs on over its own legs. */
  for (relay_t *r = c->srv->relays; r != NULL; r = r->next) {
    if (r->owner_c != c)
      continue;
    r->owner_c = NULL;
    if (!r->paired && r->legs[LEG_FETCH] != NULL &&
        !chat_stream_is_closing(&r->legs[LEG_FETCH]->stream))
      relay_fail_leg(r->legs[LEG_FETCH], "owner-left",
                     "the owner left the chat");
  }
}

void relay_stop(server_t *srv) {
  while (srv->tickets != NULL)
    ticket_drop(srv, NULL, srv->tickets);
  uv_close((uv_handle_t *)&srv->relay_tick, NULL);
}
