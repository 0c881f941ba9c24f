/* Connecting and listening over TCP, IPv6 and IPv4. */
#ifndef CHAT_NET_H
#define CHAT_NET_H

#include <uv.h>

#include "stream.h"

/* Called once with 0 when s is connected, or a negative error when every
 * address failed (s is then closed and may be freed or initialised again). */
typedef void (*chat_connect_cb)(chat_stream_t *s, int status);

/* Resolves host and connects the (uninitialised) stream s to the first
 * address that accepts, trying each in turn. The stream is initialised by
 * this call with max_line. Returns 0 (cb will run) or an error (cb will not
 * run). */
int chat_connect(uv_loop_t *loop, chat_stream_t *s, const char *host, int port,
                 size_t max_line, chat_connect_cb cb);

typedef struct chat_listener_s chat_listener_t;

/* A connection is waiting (status 0: take it with chat_listener_accept()
 * during the call), or accepting failed (status < 0, e.g. out of
 * descriptors: libuv has already dropped that connection). */
typedef void (*chat_accept_cb)(chat_listener_t *l, int status);

struct chat_listener_s {
  /* public */
  void *data;
  /* read-only */
  int port; /* the bound port (useful after asking for port 0) */
  int ipv6; /* non-zero when also listening on IPv6 */
  /* private */
  int nsocks;            /* socket handles not yet closed */
  unsigned char open[2]; /* socks[i] is listening and not closing */
  uv_tcp_t socks[2];     /* IPv4 and IPv6 */
  uv_stream_t *pending;  /* the socket with a connection, during on_accept */
  chat_accept_cb on_accept;
  int closing;
  void (*on_close)(struct chat_listener_s *);
};

/* Listens on port (0 = any free port) on every IPv4 address and, when the
 * host has IPv6, every IPv6 address; on_accept runs for each connection.
 * Returns 0 or the error of the IPv4 bind/listen (UV_EADDRINUSE, UV_EACCES,
 * ...). */
int chat_listen(uv_loop_t *loop, chat_listener_t *l, int port, int backlog,
                chat_accept_cb on_accept);

/* From inside on_accept: accepts the waiting connection into s, a stream
 * prepared with chat_stream_init_tcp(), and turns Nagle off on it. On an
 * error s stays as it was (close it). */
int chat_listener_accept(chat_listener_t *l, chat_stream_t *s);

/* Closes the listening sockets; cb runs when all are closed. */
void chat_listener_close(chat_listener_t *l, void (*cb)(chat_listener_t *l));

/* The source an address is counted as by per-address limits: an IPv4
 * address as it is ("1.2.3.4"); an IPv4-mapped IPv6 one as its IPv4
 * address; any other IPv6 address as its /64 ("2001:db8:1:2::/64"), since
 * one host or site is handed a whole /64 and could otherwise take a fresh
 * address for every connection. ip may be bracketed ("[::1]"). Anything
 * that is not an address is copied. out is always NUL-terminated; cap of
 * CHAT_SOURCE_KEY_MAX holds every result. */
#define CHAT_SOURCE_KEY_MAX 64
void chat_source_key(const char *ip, char *out, size_t cap);

/* Ignore SIGPIPE on platforms that have it: a closed peer must surface as
 * UV_EPIPE, not kill the process. Call once at start-up. */
void chat_platform_init(void);

#endif /* CHAT_NET_H */
