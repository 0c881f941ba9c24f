/* Line framer: see include/chat/framer.h.
 *
 * Invariants: buf holds one partial line of at most max_line bytes, plus one
 * CR that may be the start of a CRLF, and never a newline; while discarding
 * an over-long line nothing is kept.
 */
#include "chat/chat.h"

#include <stdlib.h>
#include <string.h>

#define FRAMER_MIN_CAP 64

void chat_framer_init(chat_framer_t *f, size_t max_line) {
  memset(f, 0, sizeof(*f));
  f->max_line = max_line > 0 ? max_line : 1;
}

void chat_framer_free(chat_framer_t *f) {
  free(f->buf);
  f->buf = NULL;
  f->len = 0;
  f->cap = 0;
  f->discarding = 0;
}

size_t chat_framer_pending(const chat_framer_t *f) {
  return f->len;
}

/* Appends n bytes to the partial line; the caller checked the limit. */
static int append(chat_framer_t *f, const char *data, size_t n) {
  size_t want = f->len + n;
  size_t cap;
  char *p;

  if (want > f->cap) {
    cap = f->cap > 0 ? f->cap : FRAMER_MIN_CAP;
    while (cap < want)
      cap *= 2;
    if (cap > f->max_line + 1)
      cap = f->max_line + 1;
    p = realloc(f->buf, cap);
    if (p == NULL)
      return UV_ENOMEM;
    f->buf = p;
    f->cap = cap;
  }
  memcpy(f->buf + f->len, data, n);
  f->len = want;
  return 0;
}

/* Delivers a complete line, dropping one CR before the LF, or reports it as
 * over-long. */
static int emit(chat_framer_t *f, const char *line, size_t len,
                chat_frame_cb cb, void *ctx) {
  if (len > 0 && line[len - 1] == '\r')
    len--;
  if (len > f->max_line)
    return cb(ctx, CHAT_ELINE, NULL, 0);
  return cb(ctx, 0, line, len);
}

/* Handles the n bytes before a newline. */
static int end_line(chat_framer_t *f, const char *data, size_t n,
                    chat_frame_cb cb, void *ctx) {
  size_t len;
  int rc;

  if (f->discarding) {
    f->discarding = 0;
    return 0;
  }
  if (f->len == 0)
    return emit(f, data, n, cb, ctx); /* the common case: no copy */
  if (f->len + n > f->max_line + 1) {
    f->len = 0;
    return cb(ctx, CHAT_ELINE, NULL, 0);
  }
  rc = append(f, data, n);
  if (rc != 0)
    return rc;
  len = f->len;
  f->len = 0;
  return emit(f, f->buf, len, cb, ctx);
}

/* Keeps the unterminated tail of a chunk for the next one. */
static int keep_tail(chat_framer_t *f, const char *data, size_t n,
                     chat_frame_cb cb, void *ctx) {
  if (f->discarding || n == 0)
    return 0;
  /* Keep one byte over max_line only when it may be the CR of a CRLF. */
  if (f->len + n > f->max_line &&
      (f->len + n > f->max_line + 1 || data[n - 1] != '\r')) {
    f->len = 0;
    f->discarding = 1; /* report now, skip the rest up to its newline */
    return cb(ctx, CHAT_ELINE, NULL, 0);
  }
  return append(f, data, n);
}

int chat_framer_feed_n(chat_framer_t *f, const char *data, size_t len,
                       chat_frame_cb cb, void *ctx, size_t *used) {
  const char *start = data;
  const char *end = data + len;
  const char *nl;
  int rc;

  *used = len;
  while (data < end) {
    nl = memchr(data, '\n', (size_t)(end - data));
    if (nl == NULL)
      return keep_tail(f, data, (size_t)(end - data), cb, ctx);
    rc = end_line(f, data, (size_t)(nl - data), cb, ctx);
    if (rc != 0) {
      *used = (size_t)(nl + 1 - start);
      return rc;
    }
    data = nl + 1;
  }
  return 0;
}

int chat_framer_feed(chat_framer_t *f, const char *data, size_t len,
                     chat_frame_cb cb, void *ctx) {
  size_t used;

  return chat_framer_feed_n(f, data, len, cb, ctx, &used);
}

int chat_framer_finish(chat_framer_t *f, chat_frame_cb cb, void *ctx) {
  size_t len = f->len;

  if (f->discarding) {
    f->discarding = 0;
    return 0;
  }
  if (len == 0)
    return 0;
  f->len = 0;
  return emit(f, f->buf, len, cb, ctx);
}
