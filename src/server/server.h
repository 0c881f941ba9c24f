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
/* How long a dropped slow consumer has to take its last line (which may go
 * past --sendq) before its connection is closed anyway. */
#define SERVER_LINGER_MS 2000
#define SERVER_DEFAULT_MAX_RELAYS 64
#define SERVER_DEFAULT_RATE 20
#define SERVER_DEFAULT_BURST 100
#define SERVER_DEFAULT_MAX_PER_IP 100
#define SERVER_DEFAULT_REGISTER_S 30
#define SERVER_DEFAULT_RELAY_WAIT_S 5
#define SERVER_DEFAULT_MAX_RELAYS_PER_USER 4
#define SERVER_DEFAULT_MAX_RELAYS_PER_IP 16

typedef struct {
  int port;                   /* TCP port, 0 = any free port */
  size_t max_line;            /* longest accepted line, bytes */
  size_t sendq;               /* unsent output allowed per client, bytes */
  size_t max_clients;         /* connections accepted at once */
  int relay;                  /* relay file transfers (--no-relay clears it) */
  size_t max_relays;          /* relays at once */
  size_t max_relays_per_user; /* relays a user is part of, 0 = unlimited */
  size_t max_relays_per_ip;   /* relays an address is part of, 0 = unlimited */
  size_t relay_rate;          /* bytes per second per relay, 0 = unlimited */
  unsigned relay_wait_s;      /* seconds a relay waits for the owner's leg */
  size_t rate;       /* lines a second per client, 0 = no flood control */
  size_t burst;      /* lines at once before rate applies */
  size_t max_per_ip; /* connections per address, 0 = unlimited */
  unsigned register_timeout_s;    /* seconds to send a name */
  int tls;                        /* --tls: TLS with the kept certificate */
  int require_tls;                /* refuse plain connections */
  const char *tls_cert, *tls_key; /* --cert, --key (PEM files) */
  const char *state_dir;          /* --state-dir, or NULL for the default */
  chat_tls_ctx_t *tls_ctx;        /* made by server_tls_setup(), or NULL */
} server_config_t;

typedef struct client_s client_t;
typedef struct pending_s pending_t;
typedef struct ticket_s ticket_t;
typedef struct relay_s relay_t;
typedef struct ipcount_s ipcount_t;

typedef struct server_s {
  /* read-only */
  uv_loop_t *loop;
  server_config_t cfg;
  int port;                /* the bound port */
  size_t nclients;         /* open connections, registered or not */
  const char *start_error; /* what server_start() could not set up */
  /* private */
  chat_listener_t listener;
  hub_t *hub;
  uv_signal_t sigint, sigterm;
  uv_timer_t reaper; /* closes doomed clients from the loop */
  uv_timer_t grace;  /* bounds the graceful shutdown */
  uv_timer_t linger; /* closes slow consumers that did not take their end */
  client_t *linger_head, *linger_tail; /* lingering, in deadline order */
  unsigned opened;                     /* what server_start() set up */
  client_t *doomed;   /* clients to close at the next reaper run */
  client_t *clients;  /* every open connection (list head) */
  pending_t *pending; /* file requests awaiting the owner, oldest first */
  pending_t *pending_tail;
  uv_timer_t xfer_timer; /* expires the oldest pending request */
  ticket_t *tickets;     /* arranged tokens that may still relay */
  ticket_t *tickets_tail;
  size_t ntickets;
  relay_t *relays; /* relays waiting for a leg or piping */
  size_t nrelays;
  uv_timer_t relay_tick;         /* rate refills, relay and ticket deadlines */
  ipcount_t **ipcounts;          /* connections per address (hash buckets) */
  client_t *throttled;           /* clients paused by flood control */
  client_t *reg_head, *reg_tail; /* unregistered, oldest first */
  uv_timer_t flood_timer;        /* refills throttled clients */
  uv_timer_t limits_timer;       /* registration deadlines */
  uint64_t accept_err_logged;    /* uv_now() of the last accept error log */
  unsigned accept_errs;          /* accept errors not logged since */
  uint64_t next_id;
  int stopping;
} server_t;

#define PEER_NAME_MAX 64

/* One connection. Private to src/server/. */
struct client_s {
  chat_stream_t stream; /* first member: the stream is the client */
  hub_member_t member;  /* hub membership, valid once registered */
  server_t *srv;
  client_t *next, *prev; /* server's list of open connections */
  client_t *next_doomed; /* server's list of clients to close */
  uint64_t id;           /* connection number, for logs */
  const char *doom_reason;
  size_t doom_queued;      /* bytes unsent when dropped as a slow consumer */
  uint64_t linger_until;   /* uv_now() by which a lingering end is forced */
  client_t *lnext, *lprev; /* srv->linger_head, while lingering */
  int file_port;           /* announced with FILEPORT; -1 = never */
  char file_fp[CHAT_TLS_FP_MAX]; /* its file key's SHA-256, or "" */
  unsigned pending_gets;         /* its GETs awaiting an owner's answer */
  unsigned ntickets;             /* relay tickets it holds as the requester */
  char peer[PEER_NAME_MAX];      /* "address:port", for logs */
  char ip[48];                   /* bare address, where its files are fetched */
  char src[CHAT_SOURCE_KEY_MAX]; /* ip as per-address limits count it */
  char name[CHAT_NAME_MAX + 1];
  relay_t *relay;          /* the relay this connection is a leg of */
  int leg;                 /* 0: the requester's leg, 1: the owner's */
  unsigned is_leg : 1;     /* a relay connection, never a chat member */
  int64_t tokens;          /* flood control: lines allowed, in 1/1000 */
  uint64_t refilled;       /* uv_now() of the last refill */
  client_t *tnext, *tprev; /* srv->throttled */
  client_t *rnext, *rprev; /* srv->reg_head, while unregistered */
  uint64_t connected_at;
  unsigned throttled : 1;
  unsigned on_reg_list : 1;
  unsigned ip_counted : 1;
  unsigned registered : 1;
  unsigned doomed : 1;
  unsigned listed_doomed : 1; /* on srv->doomed, awaiting the reaper */
  unsigned doom_slow : 1;     /* doomed as a slow consumer */
  unsigned lingering : 1;     /* on srv->linger_head */
  unsigned closing : 1;
};

/* Queues b for c (the caller keeps its reference); a failure dooms c. */
void client_send(client_t *c, chat_buf_t *b);

/* Sends a buffer made for c alone and drops the caller's reference. */
void client_send_own(client_t *c, chat_buf_t *b);

/* Closes c now; safe anywhere except inside a hub fan-out. */
void client_close(client_t *c, const char *reason);

/* Closes c after its queued output is written. */
void client_end(client_t *c);

/* Resumes reading from c after a pause. */
void client_read_resume(client_t *c);

/* limits.c: flood control, connections per address, registration time. */
/* Returns 0 or a libuv error, with nothing left open. */
int limits_init(server_t *srv);
void limits_stop(server_t *srv);
/* Counts c's address; returns its connections including c. */
unsigned limits_ip_add(client_t *c);
void limits_client_init(client_t *c);
/* Charges one line to c, pausing it when its bucket runs dry. */
void limits_line(client_t *c);
void limits_unregistered(client_t *c);
void limits_registered(client_t *c);
/* c is closed: off every list, address uncounted. */
void limits_forget(client_t *c);

/* relay.c: piping file bytes when the owner cannot accept connections. */
/* Starts the relay's ticker; 0, or a libuv error with nothing left open. */
int relay_init(server_t *srv);
/* Remembers an arranged transfer's token so it may relay for a while. */
void relay_ticket(server_t *srv, client_t *owner, client_t *requester,
                  const char *token, const char *file);
/* First line "\x01RELAY <token> fetch|serve" of a new connection. */
int relay_leg(client_t *c, const char *args, size_t len);
/* A leg read EOF: passed on, remembered, or the end of the relay. */
void relay_leg_eof(client_t *c);
void relay_leg_closed(client_t *c);
/* The owner c no longer holds the offer for token (RELAY-SERVE-FAIL): a
 * fetch leg waiting for c under that token is told and closed; anything
 * else is ignored. text is the owner's, neutralised here. */
void relay_serve_failed(client_t *c, const char *token, const char *text,
                        size_t text_len);
/* c is leaving the chat: its tickets and relays forget it. */
void relay_forget(client_t *c);
void relay_stop(server_t *srv);

/* xfer.c: arranging file transfers between clients. */
/* Returns 0 or a libuv error, with nothing left open. */
int xfer_init(server_t *srv);
/* Handles a control line from a registered client: 0 when done,
 * XFER_ANSWERED when done and the line answered a SERVE the server sent
 * (such lines are not charged to flood control: the server asked for
 * them, one per request), CHAT_EPROTO when malformed, 1 when the verb is
 * not a transfer verb. */
#define XFER_ANSWERED 2
int xfer_control(client_t *c, const chat_line_t *cmd);
/* c is leaving: fail or drop every pending request it is part of. */
void xfer_forget(client_t *c);
void xfer_stop(server_t *srv);

/* Fills cfg with the defaults. */
void server_config_init(server_config_t *cfg);

/* Starts listening and handling signals. Returns 0 or a libuv error (the
 * port is busy, ...); then srv->start_error says what failed, everything
 * opened so far is closing, and uv_run() finishes closing it. */
int server_start(server_t *srv, uv_loop_t *loop, const server_config_t *cfg);

/* Tells every client the server is going away, closes every connection and
 * the listener; uv_run() returns when all are closed. */
void server_stop(server_t *srv);

/* Frees what server_start() allocated, after uv_run() returned. */
void server_free(server_t *srv);

/* tls.c: makes cfg->tls_ctx when TLS is asked for (and logs the
 * certificate's fingerprints); 0 also when it is not. */
int server_tls_setup(server_config_t *cfg);

#endif /* CHAT_SERVER_SERVER_H */
