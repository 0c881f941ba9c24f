/* Refcounted, immutable byte buffers: format a broadcast once, hand the same
 * bytes to every recipient's write queue, free them when the last write
 * completes. */
#ifndef CHAT_BUF_H
#define CHAT_BUF_H

#include <stddef.h>

typedef struct chat_buf_s {
  /* read-only */
  size_t len; /* bytes in data */
  /* private */
  size_t refcount;
  /* public: writable only before the buffer is shared */
  char data[];
} chat_buf_t;

/* Allocates a buffer of len bytes with one reference, owned by the caller.
 * Returns NULL when out of memory. */
chat_buf_t *chat_buf_new(size_t len);

/* Allocates a buffer holding a copy of data. */
chat_buf_t *chat_buf_from(const void *data, size_t len);

/* Takes one more reference; returns b. */
chat_buf_t *chat_buf_ref(chat_buf_t *b);

/* Non-zero while more than one reference is held: the bytes may still be
 * queued for writing somewhere and must not change. */
int chat_buf_shared(const chat_buf_t *b);

/* Drops one reference and frees the buffer with the last one. Releasing a
 * buffer that has no reference left aborts (a double release is a bug). */
void chat_buf_unref(chat_buf_t *b);

#endif /* CHAT_BUF_H */
