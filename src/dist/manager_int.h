/* src/dist/manager_int.h -- the manager's state (manager_store.c) and the
 * server around it (manager.c): queues of tasks, the tasks by id with their
 * leases and results, the map's entries, and the requests that wait.
 *
 * A task lives from its put until the manager stops (a done task keeps its
 * id, so that a late ack is recognised and dropped; its payload is freed at
 * the ack and its result when taken). It is in one of three states:
 *
 *   READY   in its queue's ready list (put, nacked, lease expired)
 *   LEASED  in its taker's leased list, until ack, nack, expiry or the
 *           taker's disconnection (then READY again at the queue's front,
 *           or in "<queue>.dead" after max_deliveries deliveries)
 *   DONE    acked; its result waits to be read
 *
 * Everything runs on the manager's loop: no locks. */
#ifndef CORIO_DIST_MANAGER_INT_H
#define CORIO_DIST_MANAGER_INT_H

#include "wire_int.h"
#include "../base/list.h"

#include "corio/io.h"
#include "corio/loop.h"
#include "corio/task.h"

#include <sys/types.h>

#include <stdbool.h>
#include <stdint.h>

/* A chained hash table of intrusive nodes (the key is the owner's). */
struct corio__hnode {
    struct corio__hnode *next;
    uint64_t hash;
};
struct corio__htab {
    struct corio__hnode **slots;
    size_t cap;     /* a power of two, or 0 */
    size_t count;
};

enum mtask_state { MTASK_READY, MTASK_LEASED, MTASK_DONE };

struct mconn;
struct mqueue;

struct mtask {
    struct corio__hnode h;       /* in the store's tasks, by id */
    uint64_t id;
    enum mtask_state state;
    struct mqueue *q;            /* its queue (a dead-letter one, moved) */
    struct corio__list node;     /* ready list, or the taker's leased list */
    uint8_t *data;               /* the payload, until done */
    uint32_t len;
    uint32_t deliveries;         /* takes so far */
    struct mconn *owner;         /* LEASED: the taker */
    int64_t expires;             /* LEASED: corio_now() deadline */
    int64_t lease_ns;            /* the taker's lease and limit */
    uint32_t max_deliveries;
    bool has_result;
    bool result_taken;
    uint8_t *result;
    uint32_t result_len;
    struct corio__list waiters;  /* RESULT requests waiting */
};

struct mqueue {
    struct corio__hnode h;       /* in the store's queues, by name */
    char name[CORIO_DIST_NAME_MAX + 1];
    struct corio__list ready;    /* READY tasks, oldest first */
    size_t size;
    bool closed;
    struct corio__list waiters;  /* GET requests waiting, oldest first */
};

struct mentry {                  /* one key of one map */
    struct corio__hnode h;
    char *mapkey;                /* "map\0key" */
    size_t mapkey_len;
    uint8_t *value;
    uint32_t len;
};

/* The whole state. */
struct corio__mstore {
    struct corio__htab queues;
    struct corio__htab tasks;
    struct corio__htab entries;
    uint64_t next_id;
};

/* A manager (manager.c; manager_proc.c for process mode). */
struct corio_dist_manager {
    corio_server *srv;            /* task mode: the server */
    corio_task *reaper;           /* ... expiring leases */
    struct corio__mstore st;
    struct corio__list conns;     /* struct mconn, authenticated */
    size_t nconns;                /* connections, authenticating ones too */
    uint8_t *key;
    size_t keylen;
    size_t max_frame;
    size_t max_conns;
    int64_t auth_timeout;
    char addr[128];               /* where it listens, as text */
    pid_t pid;                    /* process mode: the manager's process */
};

/* In a task of this loop (manager.c); the options are checked. */
int corio__manager_opts_check(const corio_dist_manager_opts *o);
corio_dist_manager *corio__manager_start_here(const char *addr,
                                              const corio_dist_manager_opts *o);
int corio__manager_stop_here(corio_dist_manager *m);

/* ---- The store (manager_store.c): data only, no I/O ---------------------- */

void corio__mstore_init(struct corio__mstore *st);
/* Free everything (the waiters must be gone). */
void corio__mstore_fini(struct corio__mstore *st);
/* The queue called name, made if missing (NULL: ENOMEM); _find: NULL if
 * missing. */
struct mqueue *corio__mstore_queue(struct corio__mstore *st, const char *name);
struct mqueue *corio__mstore_queue_find(struct corio__mstore *st,
                                        const char *name);
/* The dead-letter queue of q (made if missing; NULL: ENOMEM). */
struct mqueue *corio__mstore_dead(struct corio__mstore *st, struct mqueue *q);
struct mtask *corio__mstore_task(struct corio__mstore *st, uint64_t id);
/* A new READY task at the back (front: at the front) of q, taking data
 * (malloc'd). id 0: a new id. NULL: ENOMEM. */
struct mtask *corio__mstore_task_new(struct corio__mstore *st, struct mqueue *q,
                                     uint64_t id, uint8_t *data, uint32_t len,
                                     bool front);
/* Remove and free a task. */
void corio__mstore_task_free(struct corio__mstore *st, struct mtask *t);
/* The map's entry, or NULL. */
struct mentry *corio__mstore_entry(struct corio__mstore *st, const char *map,
                                   const char *key);
/* Set (taking value, malloc'd) / delete an entry. -1: ENOMEM / ENOENT. */
int corio__mstore_entry_set(struct corio__mstore *st, const char *map,
                            const char *key, uint8_t *value, uint32_t len);
int corio__mstore_entry_del(struct corio__mstore *st, const char *map,
                            const char *key);

#endif
