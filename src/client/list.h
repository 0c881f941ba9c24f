/* Intrusive doubly linked lists: an element has `next` and `prev` fields and
 * the list is a head pointer. Used for the client's transfers. */
#ifndef CHAT_CLIENT_LIST_H
#define CHAT_CLIENT_LIST_H

/* Pushes x at the front of the list at head. */
#define LIST_ADD(head, x)                                                      \
  do {                                                                         \
    (x)->prev = NULL;                                                          \
    (x)->next = (head);                                                        \
    if ((head) != NULL)                                                        \
      (head)->prev = (x);                                                      \
    (head) = (x);                                                              \
  } while (0)

/* Unlinks x from the list at head; x's own links are cleared. */
#define LIST_DEL(head, x)                                                      \
  do {                                                                         \
    if ((x)->prev != NULL)                                                     \
      (x)->prev->next = (x)->next;                                             \
    else                                                                       \
      (head) = (x)->next;                                                      \
    if ((x)->next != NULL)                                                     \
      (x)->next->prev = (x)->prev;                                             \
    (x)->next = (x)->prev = NULL;                                              \
  } while (0)

#endif /* CHAT_CLIENT_LIST_H */
