/* Line-oriented streams over libuv: see include/chat/stream.h.
 *
 * Invariants:
 * - Queued buffers form a ring; the first `inflight` of them belong to the
 *   one write in progress (the transport's write), the rest wait for it.
 * - `queued` is the number of unwritten bytes in the ring.
 * - Memory is released only from close callbacks: the transport's
 *   chat__stream_closed() (transport.h), after all its I/O ended.
 * - Everything here works on the owner's bytes; the transport below moves
 *   them (transport.h), so pauses, budgets and coalescing are the same for
 *   every transport.
 */
#include "chat/chat.h"
#include "internal.h"
#include "transport.h"

#include <stdlib.h>
#include <string.h>

/* Buffers handed to one write: IOV_MAX on Linux and macOS. Each broadcast
 * line is its own buffer, so this caps how many lines a recipient gets per
 * sweep; at 64 it was the ceiling of capacity at 100 clients (issue 11). */
#define STREAM_WRITE_BATCH 1024
#define STREAM_FLUSH_SLICE 64  /* dirty streams written per loop iteration */
#define STREAM_WRITE_RETRIES 2 /* full-socket writes retried next iteration */

enum {
  F_READING = 1 << 0,    /* the owner wants lines */
  F_ENDING = 1 << 1,     /* chat_stream_end(): flush, then shut down */
  F_CLOSING = 1 << 2,    /* closing: no more I/O, waiting for callbacks */
  F_EOF = 1 << 3,        /* the read side has finished */
  F_SHUTDOWN = 1 << 4,   /* shutdown requested */
  F_INIT = 1 << 5,       /* the handle (or file helper) is initialised */
  F_RAW = 1 << 6,        /* deliver raw bytes, not lines */
  F_DIRTY = 1 << 7,      /* on the batch's dirty list */
  F_BROKEN = 1 << 8,     /* read bytes could not be kept: reading is over */
  F_WSHUT = 1 << 9,      /* chat_stream_shutdown(): flush, then half-close */
  F_SHUT_DONE = 1 << 10, /* the write side is shut down (or failed to) */
  F_RETRYQ = 1 << 11,    /* F_DIRTY, on the retry list instead of the FIFO */
  F_RETRY1 = 1 << 12,    /* low bit of the count of writes the kernel */
  F_RETRY_MASK = 3 << 12 /* ...refused in a row (see batch_write()) */
};

#define FRAME_STOP 1  /* on_frame: the stream is closing */
#define FRAME_RAW 2   /* on_frame: switched to raw bytes */
#define FRAME_PAUSE 3 /* on_frame: reading was stopped */

/* Write coalescing (chat_batch_start()): writes only queue and put the
 * stream at the tail of a dirty FIFO; a check handle, which runs right after
 * the loop has dispatched all I/O callbacks of an iteration, writes the
 * queues of the first STREAM_FLUSH_SLICE dirty streams, one writev each. A
 * broadcast storm then costs one syscall per recipient per sweep instead of
 * one per message.
 *
 * The slice bounds the time between two polls: while streams are still
 * dirty an idle handle makes the next poll non-blocking, so input that
 * arrives mid-sweep is read at once. A recipient not yet written in this
 * sweep takes the new line in the same writev; one already written goes to
 * the tail. Every line then reaches everyone within about one sweep, rather
 * than waiting for the current sweep to end before its own starts (p99 at
 * 1000 clients fell by 40-50 %; docs/BENCHMARKS.md). */
static _Thread_local struct {
  uv_check_t check;
  uv_idle_t idle;                    /* active while the FIFO is not empty */
  chat_stream_t *dirty, *dirty_tail; /* FIFO of streams with queued bytes */
  chat_stream_t *retry, *retry_tail; /* full sockets, for the next check */
  int on;
} batch;

#define container_of(ptr, type, member)                                        \
  ((type *)((char *)(ptr)-offsetof(type, member)))

static void flush(chat_stream_t *s);
void *(*chat__hold_alloc)(size_t len) = malloc;

/* ---- initialisation ---------------------------------------------------- */

static void stream_reset(chat_stream_t *s, chat_stream_kind kind,
                         size_t max_line) {
  void *data = s->data; /* the owner's, kept as promised */

  memset(s, 0, sizeof(*s));
  s->data = data;
  s->kind = kind;
  chat_framer_init(&s->framer, max_line);
}

int chat_stream_init_tcp(uv_loop_t *loop, chat_stream_t *s, size_t max_line) {
  int rc;

  stream_reset(s, CHAT_STREAM_TCP, max_line);
  rc = chat__tp_uv_init_tcp(loop, s);
  if (rc == 0)
    s->flags |= F_INIT;
  return rc;
}

int chat_stream_open_fd(uv_loop_t *loop, chat_stream_t *s, int fd, int readable,
                        size_t max_line) {
  int rc;

  stream_reset(s, CHAT_STREAM_FILE, max_line);
  switch (uv_guess_handle(fd)) {
  case UV_TTY:
    rc = chat__tp_uv_open_tty(loop, s, fd, readable);
    break;
  case UV_NAMED_PIPE:
  case UV_TCP:
    /* Not usable as a pipe: plain fs I/O instead. */
    rc = chat__tp_uv_open_pipe(loop, s, fd);
    if (rc != 0)
      rc = chat__tp_file_open(loop, s, fd);
    break;
  default:
    rc = chat__tp_file_open(loop, s, fd);
  }
  if (rc == 0)
    s->flags |= F_INIT;
  return rc;
}

int chat__stream_fileno(const chat_stream_t *s, uv_os_fd_t *fd) {
  if (s->tp != &chat__tp_uv)
    return UV_EINVAL;
  return uv_fileno(&s->h.handle, fd);
}

int chat__stream_reading(const chat_stream_t *s) {
  return (s->flags & F_READING) != 0;
}

int chat__stream_closing(const chat_stream_t *s) {
  return (s->flags & F_CLOSING) != 0;
}

void chat_stream_set_max_queue(chat_stream_t *s, size_t max_queue) {
  s->max_queue = max_queue;
}

int chat_stream_is_closing(const chat_stream_t *s) {
  return (s->flags & (F_ENDING | F_CLOSING)) != 0;
}

size_t chat_stream_unsent(const chat_stream_t *s) {
  if (s->flags & F_CLOSING)
    return s->queued;
  return s->queued + s->tp->unsent(s);
}

/* ---- reading ----------------------------------------------------------- */

static int on_frame(void *ctx, int status, const char *line, size_t len) {
  chat_stream_t *s = ctx;

  if (s->flags & (F_CLOSING | F_ENDING))
    return FRAME_STOP; /* the owner closed or ended us from a callback */
  if (status != 0) {
    if (s->on_event != NULL)
      s->on_event(s, status);
  } else if (s->on_line != NULL) {
    s->on_line(s, line, len);
  }
  if (s->flags & (F_CLOSING | F_ENDING))
    return FRAME_STOP;
  if (s->flags & F_RAW)
    return FRAME_RAW;
  return (s->flags & F_READING) ? 0 : FRAME_PAUSE;
}

/* Bytes that were read cannot be kept (out of memory). Going on would
 * silently skip them, so the read side stops for good (a later
 * chat_stream_read_start() fails) and the owner hears UV_ENOMEM, upon which
 * it closes the stream. */
static void read_broken(chat_stream_t *s) {
  chat_stream_read_stop(s);
  s->flags |= F_BROKEN | F_EOF;
  s->held_status = 0;
  if (!(s->flags & F_CLOSING) && s->on_event != NULL)
    s->on_event(s, UV_ENOMEM);
}

/* Keeps the unframed rest of a chunk while paused. data may point into
 * the current held buffer (a pause during redelivery). */
static void hold(chat_stream_t *s, const char *data, size_t len) {
  char *p = chat__hold_alloc(len);

  if (p == NULL) {
    read_broken(s);
    return;
  }
  memcpy(p, data, len);
  free(s->held);
  s->held = p;
  s->held_len = len;
}

/* Frames (or passes raw) bytes that were read. */
static void deliver_bytes(chat_stream_t *s, const char *data, size_t len) {
  size_t used;
  int rc;

  if (s->flags & F_BROKEN)
    return; /* a file read still in flight: the owner was told */
  if (s->flags & F_RAW) {
    s->on_data(s, data, len);
    return;
  }
  rc = chat_framer_feed_n(&s->framer, data, len, on_frame, s, &used);
  if (rc == FRAME_RAW)
    chat_framer_free(&s->framer); /* raw from now on: no partial line */
  if (rc == FRAME_RAW && used < len)
    s->on_data(s, data + used, len - used);
  else if (rc == FRAME_PAUSE && used < len)
    hold(s, data + used, len - used);
  else if (rc < 0)
    read_broken(s); /* the framer could not keep a partial line */
}

void chat__stream_read(chat_stream_t *s, const char *data, size_t len) {
  s->bytes_in += len;
  deliver_bytes(s, data, len);
}

/* The read side ended with status (UV_EOF or an error). */
void chat__stream_read_end(chat_stream_t *s, int status) {
  if (s->flags & F_BROKEN)
    return; /* reported already */
  if (s->held != NULL) {
    s->held_status = status; /* reported after the held bytes */
    return;
  }
  s->flags |= F_EOF;
  s->flags &= ~F_READING;
  if (status == UV_EOF)
    chat_framer_finish(&s->framer, on_frame, s);
  if (!(s->flags & F_CLOSING) && s->on_event != NULL)
    s->on_event(s, status);
}

int chat_stream_read_start(chat_stream_t *s, chat_line_cb on_line,
                           chat_event_cb on_event) {
  int rc;

  if (s->flags & (F_CLOSING | F_ENDING))
    return CHAT_ECLOSED;
  if (s->flags & F_BROKEN)
    return UV_ENOMEM; /* bytes were lost: never read past them */
  s->on_line = on_line;
  s->on_event = on_event;
  if ((s->flags & F_READING) || (s->flags & F_EOF))
    return 0;
  s->flags |= F_READING;
  if (s->held != NULL) {
    /* Bytes read before a pause come first; they may pause us again. */
    char *h = s->held;
    size_t n = s->held_len;
    s->held = NULL;
    s->held_len = 0;
    deliver_bytes(s, h, n);
    free(h);
    if (s->held != NULL || !(s->flags & F_READING) ||
        (s->flags & (F_CLOSING | F_ENDING)))
      return 0;
    if (s->held_status != 0) {
      int st = s->held_status;
      s->held_status = 0;
      chat__stream_read_end(s, st);
      return 0;
    }
  }
  rc = s->tp->read_start(s);
  if (rc != 0)
    s->flags &= ~F_READING;
  return rc;
}

int chat_stream_read_raw(chat_stream_t *s, chat_data_cb on_data) {
  if (on_data == NULL)
    return UV_EINVAL;
  s->on_data = on_data;
  s->flags |= F_RAW;
  if (s->framer.len > 0) {
    /* Bytes after the last line that the framer was holding. */
    size_t n = s->framer.len;
    s->framer.len = 0;
    on_data(s, s->framer.buf, n);
  }
  return 0;
}

void chat_stream_set_drain_cb(chat_stream_t *s, chat_drain_cb cb) {
  s->on_drain = cb;
}

int chat_stream_read_stop(chat_stream_t *s) {
  if (!(s->flags & F_READING))
    return 0;
  s->flags &= ~F_READING;
  return s->tp->read_stop(s);
}

/* ---- writing ----------------------------------------------------------- */

static int ring_push(chat_stream_t *s, chat_buf_t *b) {
  uint32_t cap, i;
  chat_buf_t **q;

  if (s->q == NULL) {
    /* A few queued buffers fit in the stream itself: the common case of a
     * broadcast waiting for the end of the loop iteration allocates
     * nothing per recipient. */
    s->q = s->q_inline;
    s->q_cap = (uint32_t)(sizeof(s->q_inline) / sizeof(s->q_inline[0]));
    s->q_head = 0;
  }
  if (s->q_len == s->q_cap) {
    cap = s->q_cap * 2;
    q = malloc(cap * sizeof(*q));
    if (q == NULL)
      return UV_ENOMEM;
    for (i = 0; i < s->q_len; i++)
      q[i] = s->q[(s->q_head + i) & (s->q_cap - 1)];
    if (s->q != s->q_inline)
      free(s->q);
    s->q = q;
    s->q_cap = cap;
    s->q_head = 0;
  }
  s->q[(s->q_head + s->q_len) & (s->q_cap - 1)] = chat_buf_ref(b);
  s->q_len++;
  return 0;
}

static chat_buf_t *ring_at(const chat_stream_t *s, uint32_t i) {
  return s->q[(s->q_head + i) & (s->q_cap - 1)];
}

static void ring_pop(chat_stream_t *s) {
  chat_buf_unref(ring_at(s, 0));
  s->q_head = (s->q_head + 1) & (s->q_cap - 1);
  s->q_len--;
  if (s->q_len == 0) {
    /* An idle stream keeps no heap ring: most peers are idle most of the
     * time. */
    if (s->q != s->q_inline)
      free(s->q);
    s->q = NULL;
    s->q_cap = 0;
    s->q_head = 0;
  }
}

/* Accounts for n written bytes from the head of the ring. */
static void consume(chat_stream_t *s, size_t n) {
  size_t left;

  s->bytes_out += n;
  s->queued -= n;
  while (n > 0 && s->q_len > 0) {
    left = ring_at(s, 0)->len - s->q_off;
    if (n < left) {
      s->q_off += n;
      return;
    }
    n -= left;
    s->q_off = 0;
    ring_pop(s);
  }
}

static void drop_queue(chat_stream_t *s) {
  while (s->q_len > 0)
    ring_pop(s);
  s->q_off = 0;
  s->queued = 0;
  s->inflight = 0;
}

static void write_failed(chat_stream_t *s, int status) {
  drop_queue(s);
  if (s->flags & F_ENDING) {
    /* The owner already let go (chat_stream_end): nothing is left to
     * flush, so close now rather than report to someone who ignores it. */
    chat_stream_close(s, NULL);
    return;
  }
  if (!(s->flags & F_CLOSING) && s->on_event != NULL)
    s->on_event(s, status);
}

static void after_write(chat_stream_t *s, int status, size_t written) {
  s->inflight = 0;
  if (status < 0) {
    if (status != UV_ECANCELED)
      write_failed(s, status);
    else
      drop_queue(s);
    return;
  }
  consume(s, written);
  if (s->flags & F_CLOSING)
    return;
  if (s->q_len == 0 && s->on_drain != NULL && !(s->flags & F_ENDING))
    s->on_drain(s);
  flush(s);
}

void chat__stream_wrote(chat_stream_t *s, int status) {
  size_t n = 0;

  for (uint32_t i = 0; i < s->inflight; i++)
    n += ring_at(s, i)->len;
  after_write(s, status, n - s->q_off);
}

static void do_shutdown(chat_stream_t *s);

/* Describes the unwritten head of the queue (up to STREAM_WRITE_BATCH
 * buffers, the first one past what was already written) in bufs. */
static uint32_t head_bufs(const chat_stream_t *s, uv_buf_t *bufs) {
  uint32_t n = s->q_len < STREAM_WRITE_BATCH ? s->q_len : STREAM_WRITE_BATCH;
  chat_buf_t *b;

  for (uint32_t i = 0; i < n; i++) {
    b = ring_at(s, i);
    bufs[i] = uv_buf_init(b->data, (unsigned)b->len);
  }
  bufs[0].base += s->q_off;
  bufs[0].len -= s->q_off;
  return n;
}

/* Starts one write of up to STREAM_WRITE_BATCH queued buffers. */
static void flush(chat_stream_t *s) {
  uv_buf_t bufs[STREAM_WRITE_BATCH];
  uint32_t n;
  int rc;

  if (s->inflight > 0 || (s->flags & F_CLOSING))
    return;
  if (s->q_len == 0) {
    if (s->flags & (F_ENDING | F_WSHUT))
      do_shutdown(s);
    return;
  }
  n = head_bufs(s, bufs);
  s->inflight = n;
  rc = s->tp->write(s, bufs, n);
  if (rc != 0) {
    s->inflight = 0;
    write_failed(s, rc);
  }
}

static void list_link(chat_stream_t *s, chat_stream_t **head,
                      chat_stream_t **tail) {
  s->dirty_next = NULL;
  s->dirty_prev = *tail;
  if (*tail != NULL)
    (*tail)->dirty_next = s;
  else
    *head = s;
  *tail = s;
}

/* The idle handle keeps the next poll from blocking, so the check writes
 * the queue even when the write came from outside an I/O callback (a timer
 * resuming a throttled client), where the poll would otherwise sleep until
 * the next timer first. Starting an active idle handle is a no-op. */
static void on_batch_idle(uv_idle_t *h);

static void dirty_link(chat_stream_t *s) {
  s->flags |= F_DIRTY;
  list_link(s, &batch.dirty, &batch.dirty_tail);
  uv_idle_start(&batch.idle, on_batch_idle);
}

static void dirty_unlink(chat_stream_t *s) {
  chat_stream_t **head = &batch.dirty, **tail = &batch.dirty_tail;

  if (!(s->flags & F_DIRTY))
    return;
  if (s->flags & F_RETRYQ) {
    head = &batch.retry;
    tail = &batch.retry_tail;
  }
  s->flags &= ~(F_DIRTY | F_RETRYQ);
  if (s->dirty_prev != NULL)
    s->dirty_prev->dirty_next = s->dirty_next;
  else
    *head = s->dirty_next;
  if (s->dirty_next != NULL)
    s->dirty_next->dirty_prev = s->dirty_prev;
  else
    *tail = s->dirty_prev;
  s->dirty_next = s->dirty_prev = NULL;
}

/* Writes as much of a dirty stream's queue as the kernel takes now, in one
 * writev. What is left waits, still dirty, for a later check: the FIFO's
 * tail when the kernel took all it was offered (more than one writev's
 * worth was queued), else the retry list, which the next iteration writes
 * after one more poll, since the peer on the other end is usually draining
 * its socket as we go. Only after STREAM_WRITE_RETRIES refusals in a row
 * does the rest go to uv_write(), which waits for POLLOUT. That path costs
 * a writev libuv makes at once and that fails again (the socket just said
 * it is full) and two epoll_ctl calls to watch POLLOUT and stop; it was a
 * third of the server's syscalls at 100 clients (issue 11). */
static void batch_write(chat_stream_t *s) {
  uv_buf_t bufs[STREAM_WRITE_BATCH];
  size_t offered = 0;
  uint32_t n, tries;
  int w;

  if (s->q_len == 0)
    return;
  n = head_bufs(s, bufs);
  for (uint32_t i = 0; i < n; i++)
    offered += bufs[i].len;
  w = s->tp->try_write(s, bufs, n);
  if (w < 0 && w != UV_EAGAIN && w != UV_ENOSYS) {
    write_failed(s, w);
    return;
  }
  if (w > 0)
    consume(s, (size_t)w);
  if (s->q_len == 0) {
    s->flags &= ~F_RETRY_MASK;
    if (s->on_drain != NULL && !(s->flags & F_ENDING))
      s->on_drain(s);
    flush(s); /* a shutdown that waited for the queue */
    return;
  }
  if (w == UV_ENOSYS) {
    flush(s);
    return;
  }
  if (w > 0 && (size_t)w == offered) {
    s->flags &= ~F_RETRY_MASK;
    dirty_link(s);
    return;
  }
  tries = (s->flags & F_RETRY_MASK) / F_RETRY1;
  if (tries < STREAM_WRITE_RETRIES) {
    s->flags = (s->flags & ~F_RETRY_MASK) | (tries + 1) * F_RETRY1;
    s->flags |= F_DIRTY | F_RETRYQ;
    list_link(s, &batch.retry, &batch.retry_tail);
    return;
  }
  s->flags &= ~F_RETRY_MASK;
  flush(s);
}

static void on_batch_idle(uv_idle_t *h) {
  (void)h; /* its being active is what matters: the poll does not block */
}

static void on_batch_check(uv_check_t *h) {
  chat_stream_t *s;
  unsigned n = 0;

  (void)h;
  while (n < STREAM_FLUSH_SLICE && (s = batch.dirty) != NULL) {
    dirty_unlink(s);
    if (!(s->flags & F_CLOSING) && s->inflight == 0 && s->q_len > 0) {
      batch_write(s);
      n++;
    }
  }
  /* The sockets that were full go last, after one more poll. */
  while ((s = batch.retry) != NULL) {
    dirty_unlink(s);
    dirty_link(s);
  }
  if (batch.dirty != NULL)
    uv_idle_start(&batch.idle, on_batch_idle);
  else
    uv_idle_stop(&batch.idle);
}

int chat_batch_start(uv_loop_t *loop) {
  int rc;

  if (batch.on)
    return 0;
  rc = uv_check_init(loop, &batch.check);
  if (rc != 0)
    return rc;
  rc = uv_idle_init(loop, &batch.idle);
  if (rc != 0) {
    uv_close((uv_handle_t *)&batch.check, NULL);
    return rc;
  }
  rc = uv_check_start(&batch.check, on_batch_check);
  if (rc != 0) {
    uv_close((uv_handle_t *)&batch.check, NULL);
    uv_close((uv_handle_t *)&batch.idle, NULL);
    return rc;
  }
  uv_unref((uv_handle_t *)&batch.check);
  uv_unref((uv_handle_t *)&batch.idle);
  batch.on = 1;
  return 0;
}

void chat_batch_stop(void) {
  chat_stream_t *s;

  if (!batch.on)
    return;
  batch.on = 0;
  while ((s = batch.dirty) != NULL || (s = batch.retry) != NULL) {
    dirty_unlink(s);
    flush(s); /* no more check runs: start their writes now */
  }
  uv_close((uv_handle_t *)&batch.check, NULL);
  uv_close((uv_handle_t *)&batch.idle, NULL);
}

int chat_stream_write(chat_stream_t *s, chat_buf_t *b) {
  uv_buf_t ub;
  int n = 0, rc;

  if (s->flags & (F_CLOSING | F_ENDING | F_WSHUT))
    return CHAT_ECLOSED;
  if (b->len == 0)
    return 0;
  if (s->max_queue > 0 && s->queued + b->len > s->max_queue)
    return CHAT_ESENDQ;
  if (batch.on && (s->tp->caps & CHAT__TP_BATCH)) {
    /* Coalesce: the check handle writes the queue at the end of this loop
     * iteration, together with whatever else this stream gets meanwhile. */
    rc = ring_push(s, b);
    if (rc != 0)
      return rc;
    s->queued += b->len;
    if (!(s->flags & F_DIRTY) && s->inflight == 0)
      dirty_link(s);
    return 0;
  }
  if (s->q_len == 0) {
    /* Nothing queued: offer the bytes to the kernel right away. */
    ub = uv_buf_init(b->data, (unsigned)b->len);
    n = s->tp->try_write(s, &ub, 1);
    if (n == (int)b->len) {
      s->bytes_out += (size_t)n;
      return 0;
    }
    if (n < 0 && n != UV_EAGAIN && n != UV_ENOSYS)
      return n;
    if (n < 0)
      n = 0;
  }
  rc = ring_push(s, b);
  if (rc != 0)
    return rc;
  if (s->q_len == 1) {
    s->q_off = (size_t)n;
    s->bytes_out += (size_t)n;
  }
  s->queued += b->len - (size_t)n;
  flush(s);
  return 0;
}

int chat_stream_write_copy(chat_stream_t *s, const void *data, size_t len) {
  chat_buf_t *b = chat_buf_from(data, len);
  int rc;

  if (b == NULL)
    return UV_ENOMEM;
  rc = chat_stream_write(s, b);
  chat_buf_unref(b);
  return rc;
}

/* ---- from the transports ----------------------------------------------- */

void chat__tp_read(chat_stream_t *s, const char *data, size_t len) {
  if (s->tp->up_read != NULL)
    s->tp->up_read(s, data, len);
  else
    chat__stream_read(s, data, len);
}

void chat__tp_read_end(chat_stream_t *s, int status) {
  if (s->tp->up_read_end != NULL)
    s->tp->up_read_end(s, status);
  else
    chat__stream_read_end(s, status);
}

void chat__tp_wrote(chat_stream_t *s, int status) {
  if (s->tp->up_wrote != NULL)
    s->tp->up_wrote(s, status);
  else
    chat__stream_wrote(s, status);
}

void chat__tp_shut(chat_stream_t *s, int status) {
  if (s->tp->up_shut != NULL)
    s->tp->up_shut(s, status);
  else
    chat__stream_shut(s, status);
}

void chat__tp_closed(chat_stream_t *s) {
  if (s->tp->up_closed != NULL)
    s->tp->up_closed(s);
  else
    chat__stream_closed(s);
}

/* ---- closing ----------------------------------------------------------- */

void chat__stream_closed(chat_stream_t *s) {
  free(s->held);
  s->held = NULL;
  s->held_len = 0;
  drop_queue(s);
  chat_framer_free(&s->framer);
  if (s->on_close != NULL)
    s->on_close(s);
}

void chat__stream_cancelled(chat_stream_t *s) {
  chat__stream_closed(s);
}

/* The write side is shut down, or could not be: a graceful end closes now;
 * after chat_stream_shutdown() the read side goes on, and a failure is
 * reported like a read error. */
void chat__stream_shut(chat_stream_t *s, int status) {
  s->flags |= F_SHUT_DONE;
  if (s->flags & F_CLOSING)
    return;
  if (s->flags & F_ENDING) {
    chat_stream_close(s, NULL);
    return;
  }
  if (status < 0 && s->on_event != NULL)
    s->on_event(s, status);
}

static void do_shutdown(chat_stream_t *s) {
  int rc = UV_ENOTSUP;

  if (s->flags & F_SHUTDOWN) {
    /* Half-closed before chat_stream_end(): nothing is left to shut. */
    if ((s->flags & F_SHUT_DONE) && (s->flags & F_ENDING))
      chat_stream_close(s, NULL);
    return;
  }
  s->flags |= F_SHUTDOWN;
  if (s->tp->caps & CHAT__TP_SHUTDOWN) {
    rc = s->tp->shutdown(s);
    if (rc == 0)
      return;
  }
  chat__stream_shut(s, rc);
}

int chat_stream_shutdown(chat_stream_t *s) {
  if (s->flags & (F_CLOSING | F_ENDING))
    return CHAT_ECLOSED;
  if (!(s->tp->caps & CHAT__TP_SHUTDOWN) || s->kind == CHAT_STREAM_TTY)
    return UV_ENOTSUP;
  if (s->flags & F_WSHUT)
    return 0;
  s->flags |= F_WSHUT;
  flush(s); /* shuts down at once when nothing is queued */
  return 0;
}

void chat_stream_end(chat_stream_t *s, chat_close_cb cb) {
  if (s->on_close == NULL)
    s->on_close = cb;
  if (s->flags & (F_ENDING | F_CLOSING))
    return;
  if (chat__tls_end_closes(s)) {
    chat_stream_close(s, NULL);
    return;
  }
  chat_stream_read_stop(s);
  s->flags |= F_ENDING;
  flush(s);
}

void chat_stream_close(chat_stream_t *s, chat_close_cb cb) {
  if (s->on_close == NULL)
    s->on_close = cb;
  if (s->flags & F_CLOSING)
    return;
  s->flags |= F_CLOSING;
  s->flags &= ~F_READING;
  dirty_unlink(s);
  if (s->connector != NULL) {
    chat__connect_cancel(s);
    return;
  }
  s->tp->close(s);
}
