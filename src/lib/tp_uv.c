/* The libuv stream transport (TCP, pipes, terminals): see transport.h.
 *
 * Reads go into one loop-wide buffer: libuv calls alloc, read(2) and the
 * read callback back to back for one stream at a time, and the stream above
 * frames the bytes before the callback returns, so all streams of a thread
 * can share it. This keeps an idle connection free of any read buffer. */
#include "internal.h"
#include "transport.h"

#include <stddef.h>

static _Thread_local char read_buf[CHAT_STREAM_READ_MAX];

#define container_of(ptr, type, member)                                        \
  ((type *)((char *)(ptr)-offsetof(type, member)))

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  buf->base = read_buf;
  buf->len = sizeof(read_buf);
}

static void on_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf) {
  chat_stream_t *s = container_of(h, chat_stream_t, h.stream);

  if (nread > 0) {
    chat__tp_read(s, buf->base, (size_t)nread);
  } else if (nread < 0) {
    int err = (int)nread;
    uv_read_stop(h);
    /* A reset that came with the last bytes reads as EOF, and a line cut
     * off by a reset must not be taken as a finished one. */
    if (err == UV_EOF) {
      int pending = chat__socket_error(h); /* reading it clears it */
      if (pending != 0)
        err = pending;
    }
    chat__tp_read_end(s, err);
  }
}

static int uv_tp_read_start(chat_stream_t *s) {
  return uv_read_start(&s->h.stream, on_alloc, on_read);
}

static int uv_tp_read_stop(chat_stream_t *s) {
  return uv_read_stop(&s->h.stream);
}

static int uv_tp_try_write(chat_stream_t *s, const uv_buf_t *bufs, unsigned n) {
  return uv_try_write(&s->h.stream, bufs, n);
}

static void on_write(uv_write_t *req, int status) {
  chat__tp_wrote(container_of(req, chat_stream_t, write_req), status);
}

static int uv_tp_write(chat_stream_t *s, const uv_buf_t *bufs, unsigned n) {
  return uv_write(&s->write_req, &s->h.stream, bufs, n, on_write);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  chat__tp_shut(container_of(req, chat_stream_t, shutdown_req), status);
}

static int uv_tp_shutdown(chat_stream_t *s) {
  if (s->kind == CHAT_STREAM_TTY)
    return UV_ENOTSUP;
  return uv_shutdown(&s->shutdown_req, &s->h.stream, on_shutdown);
}

static void on_closed(uv_handle_t *h) {
  chat__tp_closed(container_of(h, chat_stream_t, h.handle));
}

static void uv_tp_close(chat_stream_t *s) {
  uv_close(&s->h.handle, on_closed);
}

static size_t uv_tp_unsent(const chat_stream_t *s) {
  return chat__socket_unsent(&s->h.stream);
}

static int uv_tp_peer(const chat_stream_t *s, struct sockaddr_storage *ss) {
  int len = (int)sizeof(*ss);

  if (s->kind != CHAT_STREAM_TCP)
    return UV_ENOTSUP;
  return uv_tcp_getpeername(&s->h.tcp, (struct sockaddr *)ss, &len);
}

static int uv_tp_nodelay(chat_stream_t *s, int on) {
  if (s->kind != CHAT_STREAM_TCP)
    return UV_ENOTSUP;
  return uv_tcp_nodelay(&s->h.tcp, on);
}

static int uv_tp_keepalive(chat_stream_t *s, int on, unsigned delay) {
  if (s->kind != CHAT_STREAM_TCP)
    return UV_ENOTSUP;
  return uv_tcp_keepalive(&s->h.tcp, on, delay);
}

const chat__transport_t chat__tp_uv = {
    .name = "uv",
    .caps = CHAT__TP_BATCH | CHAT__TP_SHUTDOWN,
    .read_start = uv_tp_read_start,
    .read_stop = uv_tp_read_stop,
    .try_write = uv_tp_try_write,
    .write = uv_tp_write,
    .shutdown = uv_tp_shutdown,
    .close = uv_tp_close,
    .unsent = uv_tp_unsent,
    .peer = uv_tp_peer,
    .nodelay = uv_tp_nodelay,
    .keepalive = uv_tp_keepalive,
};

int chat__tp_uv_init_tcp(uv_loop_t *loop, chat_stream_t *s) {
  s->tp = s->base = &chat__tp_uv;
  s->kind = CHAT_STREAM_TCP;
  return uv_tcp_init(loop, &s->h.tcp);
}

int chat__tp_uv_open_pipe(uv_loop_t *loop, chat_stream_t *s, int fd) {
  int rc = uv_pipe_init(loop, &s->h.pipe, 0);

  if (rc != 0)
    return rc;
  rc = uv_pipe_open(&s->h.pipe, fd);
  if (rc != 0) {
    /* The union is not used by the caller's fallback (a FILE stream), so
     * this close may finish later. */
    uv_close(&s->h.handle, NULL);
    return rc;
  }
  s->tp = s->base = &chat__tp_uv;
  s->kind = CHAT_STREAM_PIPE;
  return 0;
}

int chat__tp_uv_open_tty(uv_loop_t *loop, chat_stream_t *s, int fd,
                         int readable) {
  int rc = uv_tty_init(loop, &s->h.tty, fd, readable);

  if (rc != 0)
    return rc;
  s->tp = s->base = &chat__tp_uv;
  s->kind = CHAT_STREAM_TTY;
  return 0;
}
