/* The file transport: stdin or stdout redirected to a regular file, read
 * and written with uv_fs_* on the thread pool (see transport.h). A file
 * read does not run back to back with its callback on the loop thread, so
 * each FILE stream reads into its own buffer. Its memory goes only after
 * every fs request ended, from the close callback of a helper timer. */
#include "internal.h"
#include "transport.h"

#include <stdlib.h>
#include <string.h>

struct chat__file_io_s {
  uv_file fd;
  uv_fs_t rreq;      /* the read in flight, if reading_now */
  uv_fs_t wreq;      /* the write in flight, if writing_now */
  uv_timer_t closer; /* closed to deliver the stream's close callback */
  int reading;       /* the stream wants bytes */
  int reading_now;
  int writing_now;
  int closing;
  char rbuf[CHAT_STREAM_READ_MAX];
};

#define container_of(ptr, type, member)                                        \
  ((type *)((char *)(ptr)-offsetof(type, member)))

static void on_closer_closed(uv_handle_t *h) {
  chat_stream_t *s = h->data;

  free(s->file);
  s->file = NULL;
  chat__tp_closed(s);
}

/* Closes once nothing is in flight any more. */
static void finish_close(chat_stream_t *s) {
  chat__file_io_t *f = s->file;

  if (!f->closing || f->reading_now || f->writing_now ||
      uv_is_closing((uv_handle_t *)&f->closer))
    return;
  uv_close((uv_handle_t *)&f->closer, on_closer_closed);
}

static void read_next(chat_stream_t *s);

static void on_fs_read(uv_fs_t *req) {
  chat__file_io_t *f = container_of(req, chat__file_io_t, rreq);
  chat_stream_t *s = f->closer.data;
  ssize_t n = req->result;

  uv_fs_req_cleanup(req);
  f->reading_now = 0;
  if (f->closing) {
    finish_close(s);
    return;
  }
  if (n > 0) {
    chat__tp_read(s, f->rbuf, (size_t)n);
    if (f->closing)
      finish_close(s);
    else
      read_next(s);
  } else {
    f->reading = 0;
    chat__tp_read_end(s, n == 0 ? UV_EOF : (int)n);
  }
}

static void read_next(chat_stream_t *s) {
  chat__file_io_t *f = s->file;
  uv_buf_t b = uv_buf_init(f->rbuf, sizeof(f->rbuf));
  int rc;

  if (f->reading_now || !f->reading || f->closing)
    return;
  rc = uv_fs_read(f->closer.loop, &f->rreq, f->fd, &b, 1, -1, on_fs_read);
  if (rc != 0) {
    f->reading = 0;
    chat__tp_read_end(s, rc);
    return;
  }
  f->reading_now = 1;
}

static int file_read_start(chat_stream_t *s) {
  s->file->reading = 1;
  read_next(s);
  return 0;
}

static int file_read_stop(chat_stream_t *s) {
  s->file->reading = 0; /* a read in flight completes; no next one starts */
  return 0;
}

static int file_try_write(chat_stream_t *s, const uv_buf_t *bufs, unsigned n) {
  (void)s;
  (void)bufs;
  (void)n;
  return UV_ENOSYS; /* a file write would block the loop */
}

static void on_fs_write(uv_fs_t *req) {
  chat__file_io_t *f = container_of(req, chat__file_io_t, wreq);
  chat_stream_t *s = f->closer.data;
  ssize_t n = req->result;

  uv_fs_req_cleanup(req);
  f->writing_now = 0;
  chat__tp_wrote(s, n < 0 ? (int)n : 0);
  if (s->file != NULL && f->closing)
    finish_close(s);
}

static int file_write(chat_stream_t *s, const uv_buf_t *bufs, unsigned n) {
  chat__file_io_t *f = s->file;
  int rc;

  rc = uv_fs_write(f->closer.loop, &f->wreq, f->fd, bufs, n, -1, on_fs_write);
  if (rc == 0)
    f->writing_now = 1;
  return rc;
}

static int file_shutdown(chat_stream_t *s) {
  (void)s;
  return UV_ENOTSUP;
}

static void file_close(chat_stream_t *s) {
  chat__file_io_t *f = s->file;

  f->closing = 1;
  f->reading = 0;
  if (f->writing_now)
    uv_cancel((uv_req_t *)&f->wreq);
  if (f->reading_now)
    uv_cancel((uv_req_t *)&f->rreq);
  finish_close(s);
}

static size_t file_unsent(const chat_stream_t *s) {
  (void)s;
  return 0;
}

static int file_peer(const chat_stream_t *s, struct sockaddr_storage *ss) {
  (void)s;
  (void)ss;
  return UV_ENOTSUP;
}

static int file_nodelay(chat_stream_t *s, int on) {
  (void)s;
  (void)on;
  return UV_ENOTSUP;
}

static int file_keepalive(chat_stream_t *s, int on, unsigned delay) {
  (void)s;
  (void)on;
  (void)delay;
  return UV_ENOTSUP;
}

const chat__transport_t chat__tp_file = {
    .name = "file",
    .caps = 0,
    .read_start = file_read_start,
    .read_stop = file_read_stop,
    .try_write = file_try_write,
    .write = file_write,
    .shutdown = file_shutdown,
    .close = file_close,
    .unsent = file_unsent,
    .peer = file_peer,
    .nodelay = file_nodelay,
    .keepalive = file_keepalive,
};

int chat__tp_file_open(uv_loop_t *loop, chat_stream_t *s, int fd) {
  chat__file_io_t *f = malloc(sizeof(*f));
  int rc;

  if (f == NULL)
    return UV_ENOMEM;
  memset(f, 0, offsetof(chat__file_io_t, rbuf));
  f->fd = fd;
  rc = uv_timer_init(loop, &f->closer);
  if (rc != 0) {
    free(f);
    return rc;
  }
  f->closer.data = s;
  s->file = f;
  s->tp = s->base = &chat__tp_file;
  s->kind = CHAT_STREAM_FILE;
  return 0;
}
