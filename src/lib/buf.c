/* Refcounted buffers: see include/chat/buf.h. */
#include "chat/buf.h"

#include <stdlib.h>
#include <string.h>

chat_buf_t *chat_buf_new(size_t len) {
  chat_buf_t *b;

  if (len > (size_t)-1 - sizeof(*b))
    return NULL;
  b = malloc(sizeof(*b) + len);
  if (b == NULL)
    return NULL;
  b->len = len;
  b->refcount = 1;
  return b;
}

chat_buf_t *chat_buf_from(const void *data, size_t len) {
  chat_buf_t *b = chat_buf_new(len);

  if (b != NULL && len > 0)
    memcpy(b->data, data, len);
  return b;
}

int chat_buf_shared(const chat_buf_t *b) {
  return b->refcount > 1;
}

chat_buf_t *chat_buf_ref(chat_buf_t *b) {
  b->refcount++;
  return b;
}

void chat_buf_unref(chat_buf_t *b) {
  if (b == NULL)
    return;
  if (b->refcount == 0)
    abort(); /* double release: a refcounting bug, never recoverable */
  if (--b->refcount == 0)
    free(b);
}
