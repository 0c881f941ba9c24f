/* The chat client: stdin menu, server connection, stdout. */
#ifndef CHAT_CLIENT_CLIENT_H
#define CHAT_CLIENT_CLIENT_H

#include <stddef.h>

#include "chat/chat.h"
#include "menu.h"

#define CLIENT_SERVER_MAX_LINE (1024 * 1024) /* longest line from a server */
#define CLIENT_INPUT_MAX_LINE (64 * 1024)    /* longest line typed */
#define CLIENT_INPUT_QUEUE_MAX (256 * 1024)  /* typed-ahead bytes kept */
/* unsent lines to the server before we stop reading stdin */
#define CLIENT_SEND_MAX (256 * 1024)
/* unwritten output before we stop reading from the server */
#define CLIENT_STDOUT_MAX (1024 * 1024)
#define CLIENT_EXIT_GRACE_MS 2000      /* bound on flushing at exit */
#define CLIENT_DEFAULT_MAX_TRANSFERS 8 /* each way, at once */
#define CLIENT_DEFAULT_STALL_S 30      /* a transfer moving nothing fails */
#define CLIENT_OFFER_TTL_MS 15000      /* a SERVE token's lifetime */
#define CLIENT_CHUNK (256 * 1024)      /* file bytes per read or write */
#define CLIENT_TICK_MS 500             /* transfer deadline checks */

#define CLIENT_DEFAULT_CONNECT_S 3 /* direct connect before relaying */

/* File connections that have not presented a valid token yet (handshakes):
 * how long one may take, how many may be open, how many from one address,
 * and how long a new one is spared when the oldest make room. */
#define CLIENT_DEFAULT_HEADER_S 5
#define CLIENT_DEFAULT_MAX_HANDSHAKES 32
#define CLIENT_HANDSHAKES_PER_ADDR 4
#define CLIENT_HANDSHAKE_GRACE_MS 500

typedef enum {
  XFER_AUTO,   /* direct, falling back to the server's relay */
  XFER_DIRECT, /* direct only */
  XFER_RELAY   /* relay only */
} xfer_mode;

typedef struct {
  const char *host;          /* chat server host name or address */
  int port;                  /* chat server port */
  int file_port;             /* -l: port we serve files on, 0 = none */
  const char *share;         /* directory we serve files from */
  const char *downloads;     /* directory received files land in */
  unsigned max_transfers;    /* concurrent transfers each way */
  unsigned stall_s;          /* seconds without progress before failing */
  unsigned connect_s;        /* seconds a direct connect may take */
  unsigned header_s;         /* seconds a file connection has for its header */
  unsigned max_handshakes;   /* file connections without a valid token */
  xfer_mode transfer;        /* --transfer */
  int tls;                   /* --tls: the chat connection runs TLS */
  int insecure;              /* --insecure: trust any certificate */
  char pin[CHAT_TLS_FP_MAX]; /* --pin, normalised, or "" */
  const char *ca_file;       /* --ca, or NULL */
  const char *known_hosts;   /* the known-hosts file */
  chat_tls_ctx_t *tls_ctx;   /* --tls: made by main() */
  /* File connections are always encrypted: our in-memory key for serving
   * (its fingerprint goes out with FILEPORT) and a context for fetching,
   * both made by main(); NULL when OpenSSL could not (then plain). */
  chat_tls_ctx_t *file_tls, *fetch_tls;
  char file_fp[CHAT_TLS_FP_MAX];
  const char *known_text; /* the known-hosts file as read at start-up */
  size_t known_len;
} client_config_t;

typedef struct input_line_s input_line_t;
typedef struct offer_s offer_t;
typedef struct sender_s sender_t;
typedef struct fetch_s fetch_t;

typedef struct {
  /* read-only */
  uv_loop_t *loop;
  client_config_t cfg;
  int exit_code;
  /* private */
  chat_stream_t in;            /* standard input */
  chat_stream_t out;           /* standard output */
  chat_stream_t server;        /* the chat connection */
  uv_timer_t timer;            /* stdout back-pressure polls, exit grace */
  uv_timer_t tick;             /* transfer deadlines */
  uv_signal_t sigint, sigterm; /* leave as with x, cleaning up */
  chat_listener_t files;       /* the -l port */
  int serving;                 /* files is listening */
  const char *share_real;      /* share, symbolic links resolved */
  offer_t *offers;             /* SERVE tokens we hold (owner side) */
  sender_t *senders;           /* files we are sending */
  fetch_t *fetches;            /* files we are receiving */
  unsigned noffers, nsenders, nfetches;
  unsigned nhandshakes; /* accepted file connections without a valid token */
  unsigned next_fetch_id;
  uint64_t parked_seq; /* fetches parked so far (fetch.c) */
  menu_t menu;
  char name[CHAT_NAME_MAX + 1];          /* ours, once the server accepted it */
  input_line_t *queue_head, *queue_tail; /* lines typed ahead */
  size_t queued_bytes;
  int interactive; /* stdin is a terminal */
  int connected;
  int server_open;  /* the server stream is connecting or connected */
  int waiting;      /* input held until the server answers our name */
  int send_blocked; /* stdin paused: too much unsent to the server */
  int input_eof;    /* stdin has ended */
  int input_failed; /* ... with an error, not at its end */
  int exiting;
  int open_streams; /* streams not yet closed */
} client_t;

/* Output. Text formatted at run time reaches stdout or stderr only through
 * these functions, and they neutralise all of it (chat_format_safe()):
 * whatever an argument holds (a server's or an owner's words, a file name)
 * prints as one line without a control sequence. Only compile-time
 * constants (the menu, the prompts) bypass that, through
 * client_print_literal(). */

/* Prints one line on stdout: the formatted text, sanitised, then "\n". */
void client_printf(client_t *c, const char *fmt, ...) CHAT_PRINTF(2, 3);

/* Prints len bytes of foreign text (a line from the server) as one
 * sanitised line. */
void client_print_text(client_t *c, const char *text, size_t len);

/* Prints a string literal exactly as it is (newlines included); anything
 * but a literal does not compile. */
#define client_print_literal(c, lit)                                           \
  client_print_constant_((c), "" lit, sizeof(lit) - 1)
void client_print_constant_(client_t *c, const char *s, size_t len);

/* Prints one line on stderr: the formatted text, sanitised, then "\n". */
void client_eprintf(const char *fmt, ...) CHAT_PRINTF(1, 2);

/* Sends one line (without its newline) to the server. */
void client_send_line(client_t *c, const char *line, size_t len);

/* serve.c: the owner side of file transfers. */
int serve_start(client_t *c);
void serve_on_serve(client_t *c, const char *args, size_t len);
void serve_on_relay(client_t *c, const char *args, size_t len);
void serve_tick(client_t *c, uint64_t now);
void serve_stop(client_t *c);

/* fetch.c: the requester side. */
void fetch_request(client_t *c, const char *owner, size_t owner_len,
                   const char *file, size_t file_len);
void fetch_on_reply(client_t *c, const chat_line_t *l);
void fetch_tick(client_t *c, uint64_t now);
void fetch_stop(client_t *c);

/* Connects and runs the session; returns with uv_run() until everything is
 * closed. Returns 0 on success or a libuv error when it cannot start. */
int client_start(client_t *c, uv_loop_t *loop, const client_config_t *cfg);

#endif /* CHAT_CLIENT_CLIENT_H */
