/* The chat server: accepts connections, registers names, relays lines. */
#ifndef CHAT_SERVER_SERVER_H
#define CHAT_SERVER_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "chat/chat.h"
#include "hub.h"

#define SERVER_DEFAULT_SENDQ (1024 * 1024)
#define SERVER_DEFAULT_MAX_CLIENTS 10000
#define SERVER_SHUTDOWN_GRACE_MS 2000 /* wait for goodbyes to drain */

typedef struct {
  int port;           /* TCP port, 0 = any free port */
  size_t max_line;    /* longest accepted line, bytes */
  size_t sendq;       /* unsent output allowed per client, bytes */
  size_t max_clients; /* connections accepted at once */
} server_config_t;

typedef struct client_s client_t;

typedef struct server_s {
  /* read-only */
  uv_loop_t *loop;
  server_config_t cfg;
  int port;        /* the bound port */
  size_t nclients; /* open connections, registered or not */
  /* private */
  chat_listener_t listener;
  hub_t *hub;
  uv_signal_t sigint, sigterm;
  uv_timer_t reaper;       /* closes doomed clients from the loop */
  uv_timer_t grace;        /* bounds the graceful shutdown */
  client_t *doomed;        /* clients to close at the next reaper run */
  client_t *clients;       /* every open connection (list head) */
  uint64_t next_id;
  int stopping;
} server_t;

/* Fills cfg with the defaults. */
void server_config_init(server_config_t *cfg);

/* Starts listening and handling signals. Returns 0 or a libuv error (the
 * port is busy, ...). */
int server_start(server_t *srv, uv_loop_t *loop, const server_config_t *cfg);

/* Tells every client the server is going away, closes every connection and
 * the listener; uv_run() returns when all are closed. */
void server_stop(server_t *srv);

/* Frees what server_start() allocated, after uv_run() returned. */
void server_free(server_t *srv);

#endif /* CHAT_SERVER_SERVER_H */
