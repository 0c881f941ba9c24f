/* The hub: who is in the chat, and fan-out of one line to everyone else.
 *
 * The server talks to the hub only through hub_ops, so a hub backed by a
 * message broker (several server nodes sharing one chat) can replace the
 * local one without touching the connection code. The hub never writes to a
 * socket itself: it calls each member's deliver() with a shared buffer.
 */
#ifndef CHAT_SERVER_HUB_H
#define CHAT_SERVER_HUB_H

#include <stddef.h>

#include "chat/chat.h"

typedef struct hub_member_s hub_member_t;
typedef struct hub_s hub_t;

struct hub_member_s {
  /* public: set by the owner before hub_join() */
  const char *name; /* validated user name, unique case-insensitively */
  size_t name_len;
  /* Queues b for this member; takes its own reference if it keeps b. A
   * failure is the member's business (the owner closes it later); the hub
   * goes on with the next member. Must not join or leave members. */
  void (*deliver)(hub_member_t *m, chat_buf_t *b);
  /* private: owned by the hub implementation */
  hub_member_t *next, *prev; /* member list, in join order */
  hub_member_t *hnext;       /* name hash chain */
  unsigned hash;
};

typedef struct hub_ops {
  /* Adds m under m->name; CHAT_ETAKEN when the name is in use. */
  int (*join)(hub_t *h, hub_member_t *m);
  /* Removes m; a no-op for a member that never joined. */
  void (*leave)(hub_t *h, hub_member_t *m);
  /* Delivers b to every member except from (which may be NULL). */
  void (*publish)(hub_t *h, hub_member_t *from, chat_buf_t *b);
  /* The member with this name (any case), or NULL. */
  hub_member_t *(*find)(hub_t *h, const char *name, size_t len);
  /* Members in the chat. */
  size_t (*count)(hub_t *h);
  /* Frees the hub; members must have left. */
  void (*destroy)(hub_t *h);
} hub_ops;

struct hub_s {
  const hub_ops *ops;
};

/* The in-process hub: a member list and a name hash table. */
hub_t *hub_local_new(void);

static inline int hub_join(hub_t *h, hub_member_t *m) {
  return h->ops->join(h, m);
}
static inline void hub_leave(hub_t *h, hub_member_t *m) {
  h->ops->leave(h, m);
}
static inline void hub_publish(hub_t *h, hub_member_t *from, chat_buf_t *b) {
  h->ops->publish(h, from, b);
}
static inline hub_member_t *hub_find(hub_t *h, const char *name, size_t len) {
  return h->ops->find(h, name, len);
}
static inline size_t hub_count(hub_t *h) {
  return h->ops->count(h);
}
static inline void hub_destroy(hub_t *h) {
  h->ops->destroy(h);
}

#endif /* CHAT_SERVER_HUB_H */
