/* Line framer: a pure byte-to-line splitter.
 *
 * It knows nothing of sockets or libuv: feed it bytes as they arrive, in any
 * chunking, and it calls back once per complete line. Lines end with "\n"; one
 * "\r" right before the "\n" is dropped too, so CRLF peers (telnet, Windows
 * nc) work. Complete lines are handed out straight from the caller's buffer
 * when possible; only a partial line at the end of a chunk is copied, so an
 * idle peer costs no buffer at all.
 *
 * A line longer than max_line bytes (without its terminator) is reported once
 * with CHAT_ELINE and discarded up to and including its newline; framing then
 * resumes with the next line. The framer never holds more than max_line
 * bytes of a partial line, plus one trailing CR that may start a CRLF.
 */
#ifndef CHAT_FRAMER_H
#define CHAT_FRAMER_H

#include <stddef.h>

/* Called for every complete line (status 0, line/len without terminator; the
 * bytes are valid only during the call), or once for an over-long line
 * (status CHAT_ELINE, line NULL, len 0). Return 0 to go on; any other value
 * stops the feed, which then returns that value and drops the rest of the
 * chunk. */
typedef int (*chat_frame_cb)(void *ctx, int status, const char *line,
                             size_t len);

typedef struct chat_framer_s {
  /* private */
  char *buf;       /* partial line carried over between chunks, or NULL */
  size_t len;      /* bytes in buf */
  size_t cap;      /* allocated size of buf */
  size_t max_line; /* longest accepted line, terminator excluded */
  int discarding;  /* inside an over-long line, skipping to its newline */
} chat_framer_t;

/* max_line must be at least 1. */
void chat_framer_init(chat_framer_t *f, size_t max_line);

/* Frees the partial-line buffer; the framer may be initialised again. */
void chat_framer_free(chat_framer_t *f);

/* Splits data into lines. Returns 0, CHAT_ENOMEM-style UV_ENOMEM when the
 * partial buffer cannot grow, or the first non-zero value cb returned. */
int chat_framer_feed(chat_framer_t *f, const char *data, size_t len,
                     chat_frame_cb cb, void *ctx);

/* Like chat_framer_feed(); when cb stops the feed, *used tells how many
 * bytes of data were consumed up to and including the newline of the line
 * that stopped it, so a caller can hand the rest to someone else (a header
 * line followed by raw bytes). *used is len when the whole chunk was
 * taken. */
int chat_framer_feed_n(chat_framer_t *f, const char *data, size_t len,
                       chat_frame_cb cb, void *ctx, size_t *used);

/* End of input: hands an unterminated final line to cb as if it had ended
 * with a newline (a peer that types a last line and closes loses nothing).
 * Returns like chat_framer_feed. */
int chat_framer_finish(chat_framer_t *f, chat_frame_cb cb, void *ctx);

/* Bytes of a partial line currently held. */
size_t chat_framer_pending(const chat_framer_t *f);

#endif /* CHAT_FRAMER_H */
