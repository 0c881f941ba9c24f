/* TCP connect and listen helpers: see include/chat/net.h. */
#include "chat/chat.h"
#include "internal.h"
#include "transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEEPALIVE_DELAY 60 /* seconds of silence before TCP probes */

/* One connection attempt sequence over the resolved addresses. */
typedef struct {
  uv_getaddrinfo_t gai;
  uv_connect_t req;
  struct addrinfo *res; /* every resolved address */
  struct addrinfo *cur; /* the address being tried */
  chat_stream_t *s;
  chat_connect_cb cb;
  size_t max_line;
  int last_err;
  int trying;    /* an attempt's handle is open (not closing) */
  int cancelled; /* chat_stream_close() was called */
} connector_t;

static void try_next(connector_t *c);

static void connector_done(connector_t *c, int status) {
  chat_stream_t *s = c->s;
  chat_connect_cb cb = c->cb;
  int cancelled = c->cancelled;

  if (c->res != NULL)
    uv_freeaddrinfo(c->res);
  s->connector = NULL;
  free(c);
  cb(s, cancelled ? UV_ECANCELED : status);
  if (cancelled)
    chat__stream_cancelled(s);
}

static void on_attempt_closed(uv_handle_t *h) {
  connector_t *c = h->data;

  if (c->cancelled) {
    connector_done(c, UV_ECANCELED);
    return;
  }
  c->cur = c->cur->ai_next;
  try_next(c);
}

void chat__connect_cancel(chat_stream_t *s) {
  connector_t *c = s->connector;

  if (c->cancelled)
    return;
  c->cancelled = 1;
  if (c->trying) {
    c->trying = 0;
    uv_close(&s->h.handle, on_attempt_closed); /* on_connected: ECANCELED */
  } else if (c->res == NULL) {
    uv_cancel((uv_req_t *)&c->gai); /* else on_resolved sees the flag */
  }
}

static void on_connected(uv_connect_t *req, int status) {
  connector_t *c = req->data;
  uv_tcp_t *tcp = &c->s->h.tcp;

  if (c->cancelled)
    return; /* the handle is closing; on_attempt_closed finishes */
  c->trying = 0;
  if (status == 0) {
    uv_tcp_nodelay(tcp, 1); /* chat lines are small and latency matters */
    uv_tcp_keepalive(tcp, 1, KEEPALIVE_DELAY);
    tcp->data = NULL;
    connector_done(c, 0);
    return;
  }
  c->last_err = status;
  uv_close((uv_handle_t *)tcp, on_attempt_closed);
}

static void try_next(connector_t *c) {
  uv_loop_t *loop = c->gai.loop;
  int rc;

  while (c->cur != NULL) {
    rc = chat_stream_init_tcp(loop, c->s, c->max_line);
    if (rc != 0) {
      connector_done(c, rc);
      return;
    }
    c->s->h.tcp.data = c;
    c->s->connector = c;
    c->req.data = c;
    rc = uv_tcp_connect(&c->req, &c->s->h.tcp, c->cur->ai_addr, on_connected);
    if (rc == 0) {
      c->trying = 1;
      return;
    }
    c->last_err = rc;
    uv_close(&c->s->h.handle, on_attempt_closed);
    return;
  }
  connector_done(c, c->last_err != 0 ? c->last_err : UV_EAI_NONAME);
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  connector_t *c = req->data;

  c->res = res;
  if (status != 0 || c->cancelled) {
    connector_done(c, status);
    return;
  }
  c->cur = res;
  try_next(c);
}

int chat_connect(uv_loop_t *loop, chat_stream_t *s, const char *host, int port,
                 size_t max_line, chat_connect_cb cb) {
  struct addrinfo hints;
  char service[16];
  connector_t *c;
  int rc;

  if (host == NULL || port <= 0 || port > 65535 || cb == NULL)
    return UV_EINVAL;
  c = calloc(1, sizeof(*c));
  if (c == NULL)
    return UV_ENOMEM;
  {
    void *data = s->data; /* the owner's, kept as promised */
    memset(s, 0, sizeof(*s));
    s->data = data;
  }
  c->s = s;
  c->cb = cb;
  c->max_line = max_line;
  c->gai.data = c;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  snprintf(service, sizeof(service), "%d", port);
  s->connector = c; /* so chat_stream_close() can cancel the resolve */
  rc = uv_getaddrinfo(loop, &c->gai, on_resolved, host, service, &hints);
  if (rc != 0) {
    s->connector = NULL;
    free(c);
  }
  return rc;
}

/* ---- listening --------------------------------------------------------- */

static void on_listener_sock_closed(uv_handle_t *h) {
  chat_listener_t *l = h->data;

  if (--l->nsocks == 0 && l->on_close != NULL)
    l->on_close(l);
}

void chat_listener_close(chat_listener_t *l, void (*cb)(chat_listener_t *)) {
  if (l->closing)
    return;
  l->closing = 1;
  l->on_close = cb;
  if (l->nsocks == 0) {
    if (cb != NULL)
      cb(l);
    return;
  }
  for (int i = 0; i < 2; i++) {
    if (l->open[i]) {
      l->open[i] = 0;
      uv_close((uv_handle_t *)&l->socks[i], on_listener_sock_closed);
    }
  }
}

static int sock_port(uv_tcp_t *t) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);

  if (uv_tcp_getsockname(t, (struct sockaddr *)&ss, &len) != 0)
    return -1;
  if (ss.ss_family == AF_INET6)
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void on_listener_connection(uv_stream_t *server, int status) {
  chat_listener_t *l = server->data;

  l->pending = server;
  l->on_accept(l, status);
  l->pending = NULL;
}

int chat_listener_accept(chat_listener_t *l, chat_stream_t *s) {
  int rc;

  if (l->pending == NULL || s->kind != CHAT_STREAM_TCP)
    return UV_EINVAL;
  rc = uv_accept(l->pending, &s->h.stream);
  if (rc == 0)
    uv_tcp_nodelay(&s->h.tcp, 1); /* chat lines are small; latency matters */
  return rc;
}

/* Binds and listens one socket; on failure the handle is closed. */
static int listen_one(uv_loop_t *loop, chat_listener_t *l, int i,
                      const struct sockaddr *addr, unsigned flags,
                      int backlog) {
  uv_tcp_t *t = &l->socks[i];
  int rc;

  rc = uv_tcp_init(loop, t);
  if (rc != 0)
    return rc;
  t->data = l;
  l->nsocks++;
  rc = uv_tcp_bind(t, addr, flags);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)t, backlog, on_listener_connection);
  if (rc != 0)
    uv_close((uv_handle_t *)t, on_listener_sock_closed);
  else
    l->open[i] = 1;
  return rc;
}

int chat_listen(uv_loop_t *loop, chat_listener_t *l, int port, int backlog,
                chat_accept_cb on_accept) {
  struct sockaddr_in a4;
  struct sockaddr_in6 a6;
  void *data = l->data;
  int rc;

  if (port < 0 || port > 65535 || on_accept == NULL)
    return UV_EINVAL;
  memset(l, 0, sizeof(*l));
  l->data = data;
  l->on_accept = on_accept;
  uv_ip4_addr("0.0.0.0", port, &a4);
  rc = listen_one(loop, l, 0, (struct sockaddr *)&a4, 0, backlog);
  if (rc != 0)
    return rc; /* its handle is closing; chat_listener_close() still works */
  l->port = sock_port(&l->socks[0]);
  /* IPv6 on the same port when the host has it; IPv4 alone is fine. */
  uv_ip6_addr("::", l->port, &a6);
  l->ipv6 = listen_one(loop, l, 1, (struct sockaddr *)&a6, UV_TCP_IPV6ONLY,
                       backlog) == 0;
  return 0;
}

void chat_source_key(const char *ip, char *out, size_t cap) {
  static const unsigned char mapped[12] = {0, 0, 0, 0, 0,    0,
                                           0, 0, 0, 0, 0xff, 0xff};
  unsigned char a[16];
  char bare[64], txt[64];
  size_t n = strlen(ip);

  if (cap == 0)
    return;
  if (n >= 2 && ip[0] == '[' && ip[n - 1] == ']' && n - 2 < sizeof(bare)) {
    memcpy(bare, ip + 1, n - 2);
    bare[n - 2] = '\0';
  } else {
    snprintf(bare, sizeof(bare), "%s", ip);
  }
  if (strchr(bare, ':') == NULL || uv_inet_pton(AF_INET6, bare, a) != 0) {
    snprintf(out, cap, "%s", ip);
    return;
  }
  if (memcmp(a, mapped, sizeof(mapped)) == 0) {
    uv_inet_ntop(AF_INET, a + 12, txt, sizeof(txt));
    snprintf(out, cap, "%s", txt);
    return;
  }
  memset(a + 8, 0, 8);
  uv_inet_ntop(AF_INET6, a, txt, sizeof(txt));
  snprintf(out, cap, "%s/64", txt);
}

static int peer_addr(const chat_stream_t *s, char *ip, size_t cap, int *port) {
  struct sockaddr_storage ss;
  int rc = s->tp->peer(s, &ss);

  if (rc != 0) {
    snprintf(ip, cap, "?");
    return rc;
  }
  if (ss.ss_family == AF_INET6) {
    uv_ip6_name((struct sockaddr_in6 *)&ss, ip, cap);
    *port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  } else {
    uv_ip4_name((struct sockaddr_in *)&ss, ip, cap);
    *port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  }
  return 0;
}

int chat_stream_peer_ip(const chat_stream_t *s, char *out, size_t cap) {
  int port;

  return peer_addr(s, out, cap, &port);
}

int chat_stream_peer(const chat_stream_t *s, char *out, size_t cap) {
  char ip[CHAT_PEER_MAX];
  int port, rc;

  rc = peer_addr(s, ip, sizeof(ip), &port);
  if (rc != 0)
    snprintf(out, cap, "?");
  else if (strchr(ip, ':') != NULL)
    snprintf(out, cap, "[%s]:%d", ip, port);
  else
    snprintf(out, cap, "%s:%d", ip, port);
  return rc;
}

int chat_stream_set_nodelay(chat_stream_t *s, int on) {
  return s->tp->nodelay(s, on);
}

int chat_stream_set_keepalive(chat_stream_t *s, int on, unsigned delay) {
  return s->tp->keepalive(s, on, delay);
}
