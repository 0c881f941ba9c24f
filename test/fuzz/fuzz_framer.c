/* Fuzz target: the line framer (include/chat/framer.h).
 *
 * Input layout: byte 0 picks a small max_line (1-64) so that the over-long
 * paths are reached with short inputs; byte 1 seeds how the rest is cut into
 * chunks and how often the callback stops the feed; the remaining bytes are
 * the stream. Every run is done with the small max_line and with 8192.
 *
 * The stream is fed three ways: as one chunk, in pseudo-random chunks, and
 * in chunks with a callback that stops the feed every few lines (then the
 * unused rest of the chunk is fed again, as a caller of chat_framer_feed_n
 * would). Each way must give exactly the transcript of a reference model of
 * the documented behaviour: split at '\n', drop one '\r' before it, report
 * a line longer than max_line as one CHAT_ELINE, hand an unterminated last
 * line over at chat_framer_finish. Every chunk is copied to the end of a
 * heap buffer so that ASan sees any read past it.
 */
#include "fuzz.h"

#include <string.h>

#include "chat/chat.h"

#define STOP 4242 /* what the stopping callback returns */

typedef struct {
  unsigned char *data;
  size_t len, cap;
} transcript_t;

static void put(transcript_t *t, const void *p, size_t n) {
  if (t->len + n > t->cap) {
    size_t cap = t->cap ? t->cap : 256;
    while (cap < t->len + n)
      cap *= 2;
    t->data = realloc(t->data, cap);
    FUZZ_CHECK(t->data != NULL);
    t->cap = cap;
  }
  if (n > 0)
    memcpy(t->data + t->len, p, n);
  t->len += n;
}

static void put_line(transcript_t *t, const char *line, size_t len) {
  put(t, "L", 1);
  put(t, &len, sizeof(len));
  put(t, line, len);
}

static void put_eline(transcript_t *t) {
  put(t, "E", 1);
}

/* The documented behaviour, written the obvious way. */
static void model(const unsigned char *p, size_t n, size_t max_line,
                  transcript_t *t) {
  size_t pos = 0;

  while (pos < n) {
    const unsigned char *nl = memchr(p + pos, '\n', n - pos);
    size_t end = nl ? (size_t)(nl - p) : n;
    size_t len = end - pos;

    if (len > 0 && p[pos + len - 1] == '\r')
      len--;
    if (len > max_line)
      put_eline(t);
    else
      put_line(t, (const char *)p + pos, len);
    pos = end + 1;
  }
}

typedef struct {
  transcript_t t;
  size_t max_line;
  unsigned stop_every; /* 0: never stop */
  unsigned events;
} ctx_t;

static int on_line(void *p, int status, const char *line, size_t len) {
  ctx_t *c = p;

  if (status == CHAT_ELINE) {
    FUZZ_CHECK(line == NULL && len == 0);
    put_eline(&c->t);
  } else {
    FUZZ_CHECK(status == 0);
    FUZZ_CHECK(len <= c->max_line);
    FUZZ_CHECK(len == 0 || line != NULL);
    FUZZ_CHECK(len == 0 || memchr(line, '\n', len) == NULL);
    put_line(&c->t, line, len);
  }
  c->events++;
  if (c->stop_every != 0 && c->events % c->stop_every == 0)
    return STOP;
  return 0;
}

static void check_state(const chat_framer_t *f, size_t max_line) {
  size_t pending = chat_framer_pending(f);

  FUZZ_CHECK(pending <= max_line + 1);
  /* The one byte over max_line may only be the CR of a coming CRLF. */
  if (pending == max_line + 1)
    FUZZ_CHECK(f->buf[max_line] == '\r');
  if (pending > 0)
    FUZZ_CHECK(memchr(f->buf, '\n', pending) == NULL);
}

static uint32_t next(uint32_t *s) {
  /* xorshift32; never 0 once seeded non-zero */
  *s ^= *s << 13;
  *s ^= *s >> 17;
  *s ^= *s << 5;
  return *s;
}

/* Feeds one chunk of n <= cap bytes from the end of scratch (cap bytes on
 * the heap), so that a read past the chunk is a read past the allocation;
 * with a stopping callback, feeds the unused rest again until the chunk is
 * consumed. */
static void feed_chunk(chat_framer_t *f, ctx_t *c, char *scratch, size_t cap,
                       const unsigned char *p, size_t n) {
  char *copy = scratch + (cap - n);
  size_t off = 0;

  FUZZ_CHECK(n <= cap);
  if (n > 0)
    memcpy(copy, p, n);
  for (;;) {
    size_t used = (size_t)-1;
    int rc = chat_framer_feed_n(f, copy + off, n - off, on_line, c, &used);

    check_state(f, c->max_line);
    FUZZ_CHECK(used <= n - off);
    if (rc == 0) {
      FUZZ_CHECK(used == n - off);
      break;
    }
    FUZZ_CHECK(rc == STOP);
    FUZZ_CHECK(c->stop_every != 0);
    /* Stopped at a line: everything up to and including its newline was
     * used; or at an over-long partial line: the whole chunk was. */
    FUZZ_CHECK(used == n - off || (used > 0 && copy[off + used - 1] == '\n'));
    off += used;
    if (off == n)
      break;
  }
}

static void finish(chat_framer_t *f, ctx_t *c) {
  int rc;

  for (;;) {
    rc = chat_framer_finish(f, on_line, c);
    if (rc != STOP)
      break;
  }
  FUZZ_CHECK(rc == 0);
  FUZZ_CHECK(chat_framer_pending(f) == 0);
  /* A finished framer has nothing left: finishing again gives nothing. */
  {
    unsigned before = c->events;
    FUZZ_CHECK(chat_framer_finish(f, on_line, c) == 0);
    FUZZ_CHECK(c->events == before);
  }
  chat_framer_free(f);
}

static void compare(const transcript_t *want, const transcript_t *got) {
  FUZZ_CHECK(want->len == got->len);
  FUZZ_CHECK(want->len == 0 || memcmp(want->data, got->data, want->len) == 0);
}

static void run(const unsigned char *p, size_t n, size_t max_line,
                uint8_t seed) {
  static const size_t spans[8] = {1, 2, 3, 7, 16, 64, 256, 4096};
  transcript_t want = {0};
  chat_framer_t f;
  ctx_t c;

  model(p, n, max_line, &want);

  /* 1. The whole stream as one chunk, through chat_framer_feed(). */
  {
    char *copy = malloc(n > 0 ? n : 1);
    FUZZ_CHECK(copy != NULL);
    if (n > 0)
      memcpy(copy, p, n);
    memset(&c, 0, sizeof(c));
    c.max_line = max_line;
    chat_framer_init(&f, max_line);
    FUZZ_CHECK(chat_framer_feed(&f, copy, n, on_line, &c) == 0);
    check_state(&f, max_line);
    free(copy);
    finish(&f, &c);
    compare(&want, &c.t);
    free(c.t.data);
  }

  /* 2. Pseudo-random chunks; 3. the same with a stopping callback. */
  for (int stopping = 0; stopping <= 1; stopping++) {
    uint32_t s = 0x9e3779b9u ^ ((uint32_t)seed * 0x01000193u);
    size_t span = spans[seed & 7];
    /* At most ~512 chunks, so that long inputs stay fast. */
    size_t least = n / 512;
    size_t pos = 0;
    char *scratch = malloc(least + span);

    FUZZ_CHECK(scratch != NULL);

    memset(&c, 0, sizeof(c));
    c.max_line = max_line;
    c.stop_every = stopping ? 1 + (seed >> 3) % 3 : 0;
    chat_framer_init(&f, max_line);
    while (pos < n) {
      size_t k = least + 1 + next(&s) % span;
      if (k > n - pos)
        k = n - pos;
      feed_chunk(&f, &c, scratch, least + span, p + pos, k);
      pos += k;
    }
    /* An empty chunk changes nothing. */
    feed_chunk(&f, &c, scratch, least + span, p, 0);
    free(scratch);
    finish(&f, &c);
    compare(&want, &c.t);
    free(c.t.data);
  }

  free(want.data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t small = 16;
  uint8_t seed = 0;

  if (size >= 2) {
    small = (size_t)(data[0] & 0x3f) + 1;
    seed = data[1];
    data += 2;
    size -= 2;
  }
  run(data, size, small, seed);
  run(data, size, CHAT_MAX_LINE_DEFAULT, seed);
  return 0;
}
