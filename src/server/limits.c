/* Per-client limits: flood control, connections per address, and the
 * registration deadline.
 *
 * Flood control is a token bucket per client (--rate lines a second, up to
 * --burst at once), kept in thousandths of a line. A client that runs dry
 * is paused with chat_stream_read_stop(), which holds the rest of what it
 * sent; one server-wide timer refills the paused clients and resumes them.
 * Nothing a client sends is ever dropped: it is only read later.
 *
 * Unregistered connections wait on a FIFO in connection order, which is
 * also deadline order, so the once-a-second ticker only looks at its head.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"

#define LIMITS_TICK_MS 1000 /* registration deadlines */
#define FLOOD_TICK_MS 50    /* refills of paused clients */
#define IP_BUCKETS 1024     /* a power of two */
#define LINE_COST 1000      /* one line, in thousandths */

struct ipcount_s {
  ipcount_t *next;
  unsigned count;
  char ip[CHAT_SOURCE_KEY_MAX]; /* the source key (chat_source_key()) */
};

static void on_flood_tick(uv_timer_t *t);
static void on_limits_tick(uv_timer_t *t);

int limits_init(server_t *srv) {
  int rc;

  /* Without the table --max-per-ip would silently not apply. */
  srv->ipcounts = calloc(IP_BUCKETS, sizeof(*srv->ipcounts));
  if (srv->ipcounts == NULL)
    return UV_ENOMEM;
  srv->flood_timer.data = srv;
  srv->limits_timer.data = srv;
  rc = uv_timer_init(srv->loop, &srv->flood_timer);
  if (rc != 0)
    goto fail;
  rc = uv_timer_init(srv->loop, &srv->limits_timer);
  if (rc != 0) {
    uv_close((uv_handle_t *)&srv->flood_timer, NULL);
    goto fail;
  }
  rc = uv_timer_start(&srv->limits_timer, on_limits_tick, LIMITS_TICK_MS,
                      LIMITS_TICK_MS);
  if (rc != 0) {
    uv_close((uv_handle_t *)&srv->flood_timer, NULL);
    uv_close((uv_handle_t *)&srv->limits_timer, NULL);
    goto fail;
  }
  uv_unref((uv_handle_t *)&srv->limits_timer);
  return 0;
fail:
  free(srv->ipcounts);
  srv->ipcounts = NULL;
  return rc;
}

void limits_stop(server_t *srv) {
  ipcount_t *e;

  for (size_t i = 0; srv->ipcounts != NULL && i < IP_BUCKETS; i++) {
    while ((e = srv->ipcounts[i]) != NULL) {
      srv->ipcounts[i] = e->next;
      free(e);
    }
  }
  free(srv->ipcounts);
  srv->ipcounts = NULL;
  uv_close((uv_handle_t *)&srv->flood_timer, NULL);
  uv_close((uv_handle_t *)&srv->limits_timer, NULL);
}

/* ---- connections per address --------------------------------------------- */

static ipcount_t **ip_slot(server_t *srv, const char *ip) {
  unsigned h = 2166136261u;
  ipcount_t **pp;

  for (const char *p = ip; *p; p++)
    h = (h ^ (unsigned char)*p) * 16777619u;
  for (pp = &srv->ipcounts[h & (IP_BUCKETS - 1)]; *pp != NULL;
       pp = &(*pp)->next)
    if (strcmp((*pp)->ip, ip) == 0)
      break;
  return pp;
}

unsigned limits_ip_add(client_t *c) {
  ipcount_t **pp, *e;

  if (c->srv->ipcounts == NULL)
    return 0;
  pp = ip_slot(c->srv, c->src);
  if (*pp == NULL) {
    e = calloc(1, sizeof(*e));
    if (e == NULL)
      return 0; /* cannot count: let it in rather than refuse everyone */
    snprintf(e->ip, sizeof(e->ip), "%s", c->src);
    *pp = e;
  }
  c->ip_counted = 1;
  return ++(*pp)->count;
}

static void ip_remove(client_t *c) {
  ipcount_t **pp, *e;

  if (!c->ip_counted || c->srv->ipcounts == NULL)
    return;
  c->ip_counted = 0;
  pp = ip_slot(c->srv, c->src);
  if ((e = *pp) != NULL && --e->count == 0) {
    *pp = e->next;
    free(e);
  }
}

/* ---- flood control --------------------------------------------------------
 */

static void refill(client_t *c, uint64_t now) {
  const server_config_t *cfg = &c->srv->cfg;
  int64_t cap = (int64_t)cfg->burst * LINE_COST;

  c->tokens += (int64_t)(now - c->refilled) * (int64_t)cfg->rate;
  if (c->tokens > cap)
    c->tokens = cap;
  c->refilled = now;
}

void limits_client_init(client_t *c) {
  c->refilled = uv_now(c->srv->loop);
  c->tokens = (int64_t)c->srv->cfg.burst * LINE_COST;
}

static void throttle_link(client_t *c) {
  server_t *srv = c->srv;

  if (srv->stopping)
    return;
  c->throttled = 1;
  c->tprev = NULL;
  c->tnext = srv->throttled;
  if (srv->throttled != NULL)
    srv->throttled->tprev = c;
  srv->throttled = c;
  if (!uv_is_active((uv_handle_t *)&srv->flood_timer))
    uv_timer_start(&srv->flood_timer, on_flood_tick, FLOOD_TICK_MS,
                   FLOOD_TICK_MS);
}

static void throttle_unlink(client_t *c) {
  server_t *srv = c->srv;

  if (!c->throttled)
    return;
  c->throttled = 0;
  if (c->tprev != NULL)
    c->tprev->tnext = c->tnext;
  else
    srv->throttled = c->tnext;
  if (c->tnext != NULL)
    c->tnext->tprev = c->tprev;
  c->tnext = c->tprev = NULL;
}

void limits_line(client_t *c) {
  server_t *srv = c->srv;

  if (srv->cfg.rate == 0 || c->throttled)
    return;
  refill(c, uv_now(srv->loop));
  c->tokens -= LINE_COST;
  if (c->tokens < LINE_COST) {
    /* Out of lines: read nothing more until the bucket has one again. */
    chat_stream_read_stop(&c->stream);
    throttle_link(c);
  }
}

static void on_flood_tick(uv_timer_t *t) {
  server_t *srv = t->data;
  uint64_t now = uv_now(srv->loop);
  client_t *c, *next;

  for (c = srv->throttled; c != NULL; c = next) {
    next = c->tnext;
    if (c->closing || c->doomed) {
      throttle_unlink(c);
      continue;
    }
    refill(c, now);
    if (c->tokens >= LINE_COST) {
      throttle_unlink(c);
      client_read_resume(c); /* may deliver held lines, and pause again */
    }
  }
  if (srv->throttled == NULL)
    uv_timer_stop(&srv->flood_timer);
}

/* ---- registration deadline ---------------------------------------------- */

void limits_unregistered(client_t *c) {
  server_t *srv = c->srv;

  c->connected_at = uv_now(srv->loop);
  c->on_reg_list = 1;
  c->rnext = NULL;
  c->rprev = srv->reg_tail;
  if (srv->reg_tail != NULL)
    srv->reg_tail->rnext = c;
  else
    srv->reg_head = c;
  srv->reg_tail = c;
}

void limits_registered(client_t *c) {
  server_t *srv = c->srv;

  if (!c->on_reg_list)
    return;
  c->on_reg_list = 0;
  if (c->rprev != NULL)
    c->rprev->rnext = c->rnext;
  else
    srv->reg_head = c->rnext;
  if (c->rnext != NULL)
    c->rnext->rprev = c->rprev;
  else
    srv->reg_tail = c->rprev;
  c->rnext = c->rprev = NULL;
}

static void on_limits_tick(uv_timer_t *t) {
  server_t *srv = t->data;
  uint64_t now = uv_now(srv->loop);
  uint64_t limit = srv->cfg.register_timeout_s * 1000ull;
  client_t *c;

  while ((c = srv->reg_head) != NULL && now - c->connected_at >= limit) {
    limits_registered(c); /* off the list, whatever happens next */
    if (c->closing)
      continue;
    log_msg("#%llu sent no name within %u s", (unsigned long long)c->id,
            srv->cfg.register_timeout_s);
    client_send_own(
        c, chat_format_error("register-timeout",
                             "no name received within %u seconds; goodbye",
                             srv->cfg.register_timeout_s));
    client_end(c);
  }
}

void limits_forget(client_t *c) {
  limits_registered(c);
  throttle_unlink(c);
  ip_remove(c);
}
