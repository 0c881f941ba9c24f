/* The chat client: stdin menu, server connection, stdout. */
#ifndef CHAT_CLIENT_CLIENT_H
#define CHAT_CLIENT_CLIENT_H

#include <stddef.h>

#include "chat/chat.h"
#include "menu.h"

#define CLIENT_SERVER_MAX_LINE (1024 * 1024) /* longest line from a server */
#define CLIENT_INPUT_MAX_LINE (64 * 1024)    /* longest line typed */
#define CLIENT_INPUT_QUEUE_MAX (256 * 1024)  /* typed-ahead bytes kept */
#define CLIENT_STDOUT_MAX (1024 * 1024) /* unwritten output before we stop
                                           reading from the server */
#define CLIENT_EXIT_GRACE_MS 2000       /* bound on flushing at exit */

typedef struct {
  const char *host; /* chat server host name or address */
  int port;         /* chat server port */
  int file_port;    /* -l: port we serve files on, 0 = none */
} client_config_t;

typedef struct input_line_s input_line_t;

typedef struct {
  /* read-only */
  uv_loop_t *loop;
  client_config_t cfg;
  int exit_code;
  /* private */
  chat_stream_t in;     /* standard input */
  chat_stream_t out;    /* standard output */
  chat_stream_t server; /* the chat connection */
  uv_timer_t timer;     /* stdout back-pressure polls, exit grace */
  menu_t menu;
  input_line_t *queue_head, *queue_tail; /* lines typed ahead */
  size_t queued_bytes;
  int interactive; /* stdin is a terminal */
  int connected;
  int waiting;     /* input held until the server answers our name */
  int input_eof;   /* stdin has ended */
  int exiting;
  int open_streams; /* streams not yet closed */
} client_t;

/* Connects and runs the session; returns with uv_run() until everything is
 * closed. Returns 0 on success or a libuv error when it cannot start. */
int client_start(client_t *c, uv_loop_t *loop, const client_config_t *cfg);

#endif /* CHAT_CLIENT_CLIENT_H */
