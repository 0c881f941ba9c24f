/* The local, in-process hub: see hub.h.
 *
 * Members sit on a circular list (a sentinel node) for fan-out and in a
 * chained hash table keyed by the lower-cased name for lookups. The table
 * doubles when it holds more members than buckets.
 */
#include "hub.h"

#include <stdlib.h>
#include <string.h>

#define HUB_MIN_BUCKETS 64

typedef struct {
  hub_t base;
  hub_member_t list; /* sentinel of the member list */
  hub_member_t **buckets;
  size_t nbuckets; /* a power of two */
  size_t count;
} hub_local_t;

/* FNV-1a over the lower-cased name: names are short and ASCII. */
static unsigned name_hash(const char *name, size_t len) {
  unsigned h = 2166136261u;

  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)name[i];
    if (c >= 'A' && c <= 'Z')
      c = (unsigned char)(c + ('a' - 'A'));
    h = (h ^ c) * 16777619u;
  }
  return h;
}

static hub_member_t *local_find(hub_t *h, const char *name, size_t len) {
  hub_local_t *hl = (hub_local_t *)h;
  unsigned hash = name_hash(name, len);
  hub_member_t *m = hl->buckets[hash & (hl->nbuckets - 1)];

  for (; m != NULL; m = m->hnext)
    if (m->hash == hash && chat_name_equal(m->name, m->name_len, name, len))
      return m;
  return NULL;
}

static void rehash(hub_local_t *hl) {
  size_t n = hl->nbuckets * 2;
  hub_member_t **b = calloc(n, sizeof(*b));
  hub_member_t *m;

  if (b == NULL)
    return; /* keep the old table: slower, still correct */
  for (m = hl->list.next; m != &hl->list; m = m->next) {
    m->hnext = b[m->hash & (n - 1)];
    b[m->hash & (n - 1)] = m;
  }
  free(hl->buckets);
  hl->buckets = b;
  hl->nbuckets = n;
}

static int local_join(hub_t *h, hub_member_t *m) {
  hub_local_t *hl = (hub_local_t *)h;
  hub_member_t **slot;

  if (local_find(h, m->name, m->name_len) != NULL)
    return CHAT_ETAKEN;
  m->hash = name_hash(m->name, m->name_len);
  m->prev = hl->list.prev;
  m->next = &hl->list;
  hl->list.prev->next = m;
  hl->list.prev = m;
  slot = &hl->buckets[m->hash & (hl->nbuckets - 1)];
  m->hnext = *slot;
  *slot = m;
  if (++hl->count > hl->nbuckets)
    rehash(hl);
  return 0;
}

static void local_leave(hub_t *h, hub_member_t *m) {
  hub_local_t *hl = (hub_local_t *)h;
  hub_member_t **slot;

  if (m->next == NULL)
    return;
  slot = &hl->buckets[m->hash & (hl->nbuckets - 1)];
  while (*slot != m)
    slot = &(*slot)->hnext;
  *slot = m->hnext;
  m->prev->next = m->next;
  m->next->prev = m->prev;
  m->next = m->prev = m->hnext = NULL;
  hl->count--;
}

static void local_publish(hub_t *h, hub_member_t *from, chat_buf_t *b) {
  hub_local_t *hl = (hub_local_t *)h;

  for (hub_member_t *m = hl->list.next; m != &hl->list; m = m->next)
    if (m != from)
      m->deliver(m, b);
}

static size_t local_count(hub_t *h) {
  return ((hub_local_t *)h)->count;
}

static void local_destroy(hub_t *h) {
  hub_local_t *hl = (hub_local_t *)h;

  free(hl->buckets);
  free(hl);
}

static const hub_ops local_ops = {
    local_join, local_leave, local_publish,
    local_find, local_count, local_destroy,
};

hub_t *hub_local_new(void) {
  hub_local_t *hl = calloc(1, sizeof(*hl));

  if (hl == NULL)
    return NULL;
  hl->buckets = calloc(HUB_MIN_BUCKETS, sizeof(*hl->buckets));
  if (hl->buckets == NULL) {
    free(hl);
    return NULL;
  }
  hl->nbuckets = HUB_MIN_BUCKETS;
  hl->list.next = hl->list.prev = &hl->list;
  hl->base.ops = &local_ops;
  return &hl->base;
}
