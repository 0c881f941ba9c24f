/* chat_stream_t: one line-oriented stream over a socket, a pipe, a
 * terminal or a file.
 *
 * The server and the client talk to peers, the terminal, pipes and files
 * only through this type and never touch what is inside it: the bytes are
 * moved by a transport under it (src/lib/transport.h), so a filter (TLS,
 * WebSocket) slots in underneath without touching them.
 *
 * Reading: bytes are read into one loop-wide buffer and framed into lines at
 * once; a stream keeps only a partial line between reads.
 *
 * Writing: chat_stream_write() queues a reference to a shared chat_buf_t, so
 * one formatted broadcast serves every recipient. When nothing is queued the
 * bytes are first offered to the transport directly (a try-write); what is
 * left is queued and written in batches of up to IOV_MAX buffers per write. The
 * queue has a byte budget: a write that would exceed it fails with CHAT_ESENDQ
 * and queues nothing, and the caller decides what to do with the slow peer.
 *
 * Lifetime: the chat_stream_t memory belongs to the caller and must stay
 * valid until the close callback runs; free it there, not before.
 */
#ifndef CHAT_STREAM_H
#define CHAT_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "framer.h"

typedef struct chat_stream_s chat_stream_t;

/* No single line or data callback covers more than this many bytes read. */
#define CHAT_STREAM_READ_MAX (64 * 1024)

/* A complete line arrived (terminator removed; bytes valid during the call
 * only). */
typedef void (*chat_line_cb)(chat_stream_t *s, const char *line, size_t len);

/* Something other than a line happened on the read side: CHAT_ELINE (an
 * over-long line was discarded, reading goes on), UV_EOF (the peer finished;
 * any unterminated last line was delivered first) or another negative libuv
 * error (reading stopped). UV_ENOMEM means bytes that were read could not
 * be kept: reading stopped for good (chat_stream_read_start() fails from
 * then on), so the owner should close the stream. */
typedef void (*chat_event_cb)(chat_stream_t *s, int status);

/* Raw bytes arrived (after chat_stream_read_raw()); valid during the call
 * only. */
typedef void (*chat_data_cb)(chat_stream_t *s, const char *data, size_t len);

/* Everything queued has been written. */
typedef void (*chat_drain_cb)(chat_stream_t *s);

/* The stream is closed; its memory may be freed now. */
typedef void (*chat_close_cb)(chat_stream_t *s);

typedef enum {
  CHAT_STREAM_TCP,
  CHAT_STREAM_PIPE,
  CHAT_STREAM_TTY,
  CHAT_STREAM_FILE
} chat_stream_kind;

typedef struct chat__file_io_s chat__file_io_t;
typedef struct chat__transport_s chat__transport_t;
typedef struct chat__tls_s chat__tls_t;

struct chat_stream_s {
  /* public */
  void *data; /* owner's pointer, untouched by libchat */
  /* read-only */
  chat_stream_kind kind;
  size_t queued;      /* bytes accepted for writing and not yet written */
  size_t max_queue;   /* budget for queued, 0 = unlimited */
  uint64_t bytes_in;  /* bytes read so far */
  uint64_t bytes_out; /* bytes written so far */
  /* private: only libchat's stream layer and its transports touch these */
  const chat__transport_t *tp;   /* the top layer (src/lib/transport.h) */
  const chat__transport_t *base; /* the bottom one: tp, or under a filter */
  chat__tls_t *tls;              /* the TLS filter's state, or NULL */
  union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
    uv_tty_t tty;
  } h;
  chat__file_io_t *file; /* CHAT_STREAM_FILE only */
  void *connector;       /* chat_connect() in progress, or NULL */
  chat_framer_t framer;
  chat_line_cb on_line;
  chat_event_cb on_event;
  chat_close_cb on_close;
  chat_data_cb on_data;
  chat_drain_cb on_drain;
  uv_write_t write_req;
  uv_shutdown_t shutdown_req;
  chat_buf_t **q; /* ring of queued buffers: q_inline or the heap */
  chat_buf_t *q_inline[4];
  uint32_t q_head;   /* index of the oldest queued buffer */
  uint32_t q_len;    /* buffers in the ring */
  uint32_t q_cap;    /* ring size, a power of two */
  uint32_t inflight; /* buffers at the ring head owned by a pending write */
  size_t q_off;      /* bytes of the head buffer already written */
  char *held;        /* bytes read but not yet framed (paused mid-chunk) */
  size_t held_len;
  int held_status; /* EOF or error seen while bytes were held, or 0 */
  chat_stream_t *dirty_next, *dirty_prev; /* write batching list */
  unsigned flags;
};

/* Prepares s as a TCP stream; then chat_listener_accept() into it, or use
 * chat_connect(). Lines longer than max_line are discarded. */
int chat_stream_init_tcp(uv_loop_t *loop, chat_stream_t *s, size_t max_line);

/* Wraps an inherited descriptor (stdin, stdout): a terminal becomes a TTY
 * stream, a pipe or socket a PIPE stream, a regular file or anything else a
 * FILE stream (read and written with uv_fs_*). On failure nothing needs
 * closing. */
int chat_stream_open_fd(uv_loop_t *loop, chat_stream_t *s, int fd, int readable,
                        size_t max_line);

/* The peer of a TCP stream as "1.2.3.4:5" or "[::1]:5", or its bare
 * address ("1.2.3.4", "::1"). out is always
 * NUL-terminated; "?" with an error (UV_ENOTSUP for a stream that is not a
 * socket). CHAT_PEER_MAX holds every result. */
#define CHAT_PEER_MAX 64
int chat_stream_peer(const chat_stream_t *s, char *out, size_t cap);
int chat_stream_peer_ip(const chat_stream_t *s, char *out, size_t cap);

/* TCP_NODELAY and keepalive (probes after delay seconds of silence) on a
 * TCP stream; UV_ENOTSUP on others. */
int chat_stream_set_nodelay(chat_stream_t *s, int on);
int chat_stream_set_keepalive(chat_stream_t *s, int on, unsigned delay);

/* Starts (or resumes) delivering lines and events. */
int chat_stream_read_start(chat_stream_t *s, chat_line_cb on_line,
                           chat_event_cb on_event);

/* Switches the read side from lines to raw bytes, for a protocol that sends
 * a header line and then a body. Called from a line callback, the bytes
 * that followed that line in the same read reach on_data right after the
 * callback returns; nothing is lost or delivered twice. EOF and errors still
 * reach the event callback. */
int chat_stream_read_raw(chat_stream_t *s, chat_data_cb on_data);

/* Calls cb each time the write queue becomes empty after a queued write
 * completed. A write that the kernel takes at once never queues, so check
 * `queued` after chat_stream_write() too. */
void chat_stream_set_drain_cb(chat_stream_t *s, chat_drain_cb cb);

/* Stops reading; chat_stream_read_start() resumes. Called from a line
 * callback it takes effect at once: the rest of the bytes already read are
 * held (at most one read's worth) and delivered, in order, by the next
 * chat_stream_read_start(), before it returns. */
int chat_stream_read_stop(chat_stream_t *s);

/* Queues b for writing; the stream takes its own reference, the caller keeps
 * its own. Returns 0, CHAT_ESENDQ when the budget would be exceeded (nothing
 * queued), CHAT_ECLOSED after end/close, or a libuv error. */
int chat_stream_write(chat_stream_t *s, chat_buf_t *b);

/* Copies len bytes and queues them. */
int chat_stream_write_copy(chat_stream_t *s, const void *data, size_t len);

/* Write coalescing for every stream of this thread's loop: from now on
 * chat_stream_write() only queues, and all queued bytes of a stream are
 * written with one writev after the loop iteration's I/O callbacks (a
 * uv_check handle), in FIFO order of the streams and at most 64 streams per
 * iteration, so that input arriving during a long sweep is read without
 * waiting for the sweep to end. Fewer syscalls under load, no added latency.
 * Returns 0 or a libuv error. */
int chat_batch_start(uv_loop_t *loop);

/* Turns coalescing off, starts the writes still pending and closes the
 * check handle (call before the loop's last run). */
void chat_batch_stop(void);

/* Sets the write-queue budget in bytes; 0 means unlimited. */
void chat_stream_set_max_queue(chat_stream_t *s, size_t max_queue);

/* Graceful close: stops reading, writes everything queued, shuts the write
 * side down (TCP FIN), then closes and calls cb. Later writes fail. */
void chat_stream_end(chat_stream_t *s, chat_close_cb cb);

/* Half-close: writes everything queued, then shuts the write side down (TCP
 * FIN) and keeps reading, so the peer sees the end of our bytes while its
 * own still arrive. Later writes fail with CHAT_ECLOSED; a failed shutdown
 * reaches the event callback like a read error. chat_stream_end() or
 * chat_stream_close() still ends the stream. Returns 0 (also when called
 * again), CHAT_ECLOSED after end/close, or UV_ENOTSUP for a TTY or FILE
 * stream. */
int chat_stream_shutdown(chat_stream_t *s);

/* Immediate close: drops what is queued and closes; cb runs from the loop.
 * Safe to call more than once and after chat_stream_end(): the first
 * callback given wins. On a stream still inside chat_connect() it cancels
 * the connect: the connect callback runs with UV_ECANCELED, then cb. */
void chat_stream_close(chat_stream_t *s, chat_close_cb cb);

/* Non-zero once chat_stream_end() or chat_stream_close() was called. */
int chat_stream_is_closing(const chat_stream_t *s);

/* Bytes written to s that its peer has not received yet: the queue plus,
 * for TCP where the platform tells (Linux, macOS), what the kernel still
 * holds in its send buffer. A falling figure means a reader is draining. */
size_t chat_stream_unsent(const chat_stream_t *s);

#endif /* CHAT_STREAM_H */
