/* The transport layer under chat_stream_t; private to libchat.
 *
 * chat_stream_t (stream.c) is the upper layer: framing, the write queue of
 * shared buffers, write coalescing, exact pauses, byte budgets and graceful
 * end, all at the level of the bytes its owner reads and writes. A
 * transport moves those bytes: the libuv stream one (tp_uv.c: TCP, pipes,
 * terminals) and the file one (tp_file.c: uv_fs_* on the thread pool). A
 * filter (tls.c) is a transport pushed on top of the base one: s->tp is the
 * top, s->base the bottom. The stream calls s->tp's ops; a filter's ops
 * encrypt or frame and call s->base's; the base reports upwards through
 * chat__tp_*(), which hand the report to the filter's up_* ops when there
 * is a filter and to the stream (chat__stream_*) when there is none; the
 * filter reports what it made of it to the stream.
 *
 * Contract, for every transport:
 * - read_start/read_stop switch delivery on and off; bytes go up through
 *   chat__stream_read(), the end of the read side (UV_EOF or an error)
 *   through chat__stream_read_end(), once.
 * - try_write offers bufs without waiting: it returns the bytes taken (all,
 *   some or none as UV_EAGAIN), UV_ENOSYS when the transport cannot try,
 *   or another error. write takes all of bufs; at most one is in flight,
 *   and chat__stream_wrote() ends it (status 0 or an error). The buffers
 *   stay valid until then.
 * - shutdown ends the write side once; chat__stream_shut() reports it.
 *   UV_ENOTSUP when the transport has no half-close.
 * - close stops all I/O and cancels what is in flight; the stream's memory
 *   is the owner's again only after chat__stream_closed(), which comes from
 *   the loop, never from inside close.
 */
#ifndef CHAT_LIB_TRANSPORT_H
#define CHAT_LIB_TRANSPORT_H

#include "chat/chat.h"

enum {
  CHAT__TP_BATCH = 1 << 0,    /* writes coalesce in the loop's batch */
  CHAT__TP_SHUTDOWN = 1 << 1, /* has a half-close */
};

struct chat__transport_s {
  const char *name;
  unsigned caps;
  int (*read_start)(chat_stream_t *s);
  int (*read_stop)(chat_stream_t *s);
  int (*try_write)(chat_stream_t *s, const uv_buf_t *bufs, unsigned n);
  int (*write)(chat_stream_t *s, const uv_buf_t *bufs, unsigned n);
  int (*shutdown)(chat_stream_t *s);
  void (*close)(chat_stream_t *s);
  size_t (*unsent)(const chat_stream_t *s);
  /* The socket's peer and options; UV_ENOTSUP when there is no socket. */
  int (*peer)(const chat_stream_t *s, struct sockaddr_storage *ss);
  int (*nodelay)(chat_stream_t *s, int on);
  int (*keepalive)(chat_stream_t *s, int on, unsigned delay);
  /* A filter only (NULL in a base transport): what the base reports. */
  void (*up_read)(chat_stream_t *s, const char *data, size_t len);
  void (*up_read_end)(chat_stream_t *s, int status);
  void (*up_wrote)(chat_stream_t *s, int status);
  void (*up_shut)(chat_stream_t *s, int status);
  void (*up_closed)(chat_stream_t *s);
};

/* The transports. */
extern const chat__transport_t chat__tp_uv;
extern const chat__transport_t chat__tp_file;

/* tp_uv.c: initialises s's handle as a TCP socket, a pipe over fd or a
 * terminal over fd. */
int chat__tp_uv_init_tcp(uv_loop_t *loop, chat_stream_t *s);
int chat__tp_uv_open_pipe(uv_loop_t *loop, chat_stream_t *s, int fd);
int chat__tp_uv_open_tty(uv_loop_t *loop, chat_stream_t *s, int fd,
                         int readable);

/* tp_file.c: makes s a FILE stream over fd. */
int chat__tp_file_open(uv_loop_t *loop, chat_stream_t *s, int fd);

/* stream.c: what a base transport reports, to the filter on top of it or,
 * without one, to the stream. */
void chat__tp_read(chat_stream_t *s, const char *data, size_t len);
void chat__tp_read_end(chat_stream_t *s, int status);
void chat__tp_wrote(chat_stream_t *s, int status);
void chat__tp_shut(chat_stream_t *s, int status);
void chat__tp_closed(chat_stream_t *s);

/* stream.c: what the top transport reports to the stream. */
void chat__stream_read(chat_stream_t *s, const char *data, size_t len);
void chat__stream_read_end(chat_stream_t *s, int status);
void chat__stream_wrote(chat_stream_t *s, int status);
void chat__stream_shut(chat_stream_t *s, int status);
void chat__stream_closed(chat_stream_t *s);

/* stream.c: non-zero once the stream is closing (no more I/O). */
int chat__stream_closing(const chat_stream_t *s);

/* tls.c: non-zero when ending s should close it at once: the server side
 * of a TLS handshake that has not completed. Nothing it writes can reach
 * that peer (a silent or broken client, or one being refused), so waiting
 * would only keep it open. A client's end waits for its handshake, so
 * that what it wrote first still goes out. */
int chat__tls_end_closes(const chat_stream_t *s);

/* stream.c: non-zero while the owner wants bytes (read started, not
 * stopped). */
int chat__stream_reading(const chat_stream_t *s);

#endif /* CHAT_LIB_TRANSPORT_H */
