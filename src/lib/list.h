/*
 * An intrusive doubly-linked list, as Linux's list_head and libuv's queue: an entry embeds a
 * struct list_node, so linking allocates nothing and an entry leaves its list in O(1) without
 * knowing which list holds it. The list itself is a struct list_node, its head, and the list is
 * circular through it: inserting and removing are the same few stores at either end or in the
 * middle, with no NULL cases to get wrong.
 *
 *     struct conn { struct list_node link; ... };
 *     struct list_node conns;                         list_init(&conns) before first use
 *     list_insert_tail(&conns, &c->link);
 *     struct conn *c, *oldest = LIST_ENTRY(list_first(&conns), struct conn, link);
 *     LIST_FOR_EACH(c, &conns, link)                  c may leave the list in the body
 *         if (done(c)) list_remove(&c->link);
 *
 * A node is unlinked while its pointers are NULL: zeroed memory (xcalloc) is an unlinked node,
 * and list_remove leaves one so, which list_linked tells. Removing an unlinked node, inserting a
 * linked one or inserting into a list that was never initialised is a bug: MESH_BUG_ON (fatal in
 * debug builds); in release builds the call changes nothing.
 *
 * Nothing here locks: a list belongs to one thread, like the loop that runs it.
 */
#ifndef MESH_LIB_LIST_H
#define MESH_LIB_LIST_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/alloc.h"
#include "lib/bug.h"

struct list_node {
    struct list_node *prev, *next;
};

/* head becomes an empty list. */
static inline void list_init(struct list_node *head)
{
    head->prev = head->next = head;
}

static inline bool list_empty(const struct list_node *head)
{
    return head->next == head;
}

/* n is in a list (or n is an initialised head). */
static inline bool list_linked(const struct list_node *n)
{
    return n->next != NULL;
}

/* Links n into head's list, first or last. */
static inline void list_link_(struct list_node *head, struct list_node *n, bool first)
{
    if (MESH_BUG_ON(!list_linked(head)) || MESH_BUG_ON(list_linked(n)))
        return;
    struct list_node *prev = first ? head : head->prev;

    n->prev = prev;
    n->next = prev->next;
    prev->next->prev = n;
    prev->next = n;
}

/* n becomes the first entry of head's list. */
static inline void list_insert_head(struct list_node *head, struct list_node *n)
{
    list_link_(head, n, true);
}

/* n becomes the last entry of head's list. */
static inline void list_insert_tail(struct list_node *head, struct list_node *n)
{
    list_link_(head, n, false);
}

/* n leaves its list and is unlinked. */
static inline void list_remove(struct list_node *n)
{
    if (MESH_BUG_ON(!list_linked(n)))
        return;
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = NULL;
}

/* The first and the last node of head's list; NULL when it is empty. */
static inline struct list_node *list_first(const struct list_node *head)
{
    return list_empty(head) ? NULL : head->next;
}

static inline struct list_node *list_last(const struct list_node *head)
{
    return list_empty(head) ? NULL : head->prev;
}

/* The entry of type `type` whose member `member` is node n; NULL when n is NULL. */
#define LIST_ENTRY(n, type, member)                                                                \
    __extension__({                                                                                \
        struct list_node *list_n_ = (n);                                                           \
        list_n_ ? CONTAINER_OF(list_n_, type, member) : (type *)NULL;                              \
    })

/*
 * Runs the statement after it with pos (a pointer to an entry type, declared by the caller) set
 * to each entry of head's list in order, first to last, or last to first for the _REVERSE form.
 * The statement may remove pos from the list (or free it), since the step to the next entry is
 * read before it runs; it must not remove any other entry. head is evaluated more than once.
 */
#define LIST_FOR_EACH(pos, head, member)         LIST_WALK_(pos, head, member, next)
#define LIST_FOR_EACH_REVERSE(pos, head, member) LIST_WALK_(pos, head, member, prev)

#define LIST_WALK_(pos, head, member, dir)                                                         \
    for (struct list_node *pos##_node_ = (head)->dir, *pos##_step_ = pos##_node_->dir;             \
         pos##_node_ != (head) &&                                                                  \
         ((pos) = CONTAINER_OF(pos##_node_, __typeof__(*(pos)), member), true);                    \
         pos##_node_ = pos##_step_, pos##_step_ = pos##_node_->dir)

#endif
