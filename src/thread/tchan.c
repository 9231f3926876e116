/* src/thread/tchan.c -- a bounded MPMC channel of pointers across threads
 * and loops (queue.Queue(maxsize), a Go channel with close).
 *
 * A ring buffer under the channel's mutex, with two wait lists: senders
 * waiting for room, receivers waiting for an item. A send that queues an
 * item wakes one receiver, a receive that makes room wakes one sender;
 * close wakes everyone. A woken caller tries again (twait.c), so an item
 * is never handed to a waiter that has given up: it stays in the buffer
 * for the next receiver, and nothing is lost or taken twice. */
#include "thread_int.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

struct corio_tchan {
    struct corio__tobj obj;         /* first: tchan_release frees it */
    struct corio__list senders;     /* waiting for room */
    struct corio__list receivers;   /* waiting for an item */
    size_t cap;
    /* Under obj.mu. */
    size_t head, len;
    bool closed;
    void **buf;                     /* cap slots */
};

static void tchan_release(struct corio__tobj *o)
{
    struct corio_tchan *ch = (struct corio_tchan *)o;

    free(ch->buf);
    free(ch);
}

corio_tchan *corio_tchan_new(size_t cap)
{
    corio_tchan *ch;

    if (cap == 0 || cap > SIZE_MAX / sizeof(void *)) {
        errno = EINVAL;
        return NULL;
    }
    ch = calloc(1, sizeof(*ch));
    if (ch == NULL)
        return NULL;
    ch->buf = malloc(cap * sizeof(void *));
    if (ch->buf == NULL) {
        free(ch);
        errno = ENOMEM;
        return NULL;
    }
    corio__tobj_init(&ch->obj, tchan_release);
    corio__list_init(&ch->senders);
    corio__list_init(&ch->receivers);
    ch->cap = cap;
    return ch;
}

int corio_tchan_free(corio_tchan *ch)
{
    if (ch == NULL)
        return 0;
    corio__tobj_lock(&ch->obj);
    return corio__tobj_free(&ch->obj, false);
}

/* Under the mutex: queue item if there is room. 0, or an errno. */
static int put(corio_tchan *ch, void *item)
{
    if (ch->closed)
        return CORIO_ECLOSED;
    if (ch->len == ch->cap)
        return EAGAIN;
    ch->buf[(ch->head + ch->len) % ch->cap] = item;
    ch->len++;
    corio__tw_signal(&ch->obj, &ch->receivers);
    return 0;
}

/* Under the mutex: take the oldest item if there is one. 0, or an errno. */
static int take(corio_tchan *ch, void **item)
{
    if (ch->len == 0)
        return ch->closed ? CORIO_ECLOSED : EAGAIN;
    *item = ch->buf[ch->head];
    ch->head = (ch->head + 1) % ch->cap;
    ch->len--;
    corio__tw_signal(&ch->obj, &ch->senders);
    return 0;
}

static int unlock_result(corio_tchan *ch, int err)
{
    corio__tobj_unlock(&ch->obj);
    if (err == 0)
        return 0;
    errno = err;
    return -1;
}

int corio_tchan_send(corio_tchan *ch, void *item, int64_t deadline)
{
    int err;

    if (ch == NULL)
        return corio__einval();
    if (corio__checkpoint() == -1)
        return -1;
    corio__tobj_lock(&ch->obj);
    while ((err = put(ch, item)) == EAGAIN) {
        if (corio__tw_wait(&ch->obj, &ch->senders, deadline) == -1) {
            err = errno;
            break;
        }
    }
    return unlock_result(ch, err);
}

int corio_tchan_recv(corio_tchan *ch, void **item, int64_t deadline)
{
    void *dummy;
    int err;

    if (ch == NULL)
        return corio__einval();
    if (corio__checkpoint() == -1)
        return -1;
    corio__tobj_lock(&ch->obj);
    while ((err = take(ch, item != NULL ? item : &dummy)) == EAGAIN) {
        if (corio__tw_wait(&ch->obj, &ch->receivers, deadline) == -1) {
            err = errno;
            break;
        }
    }
    return unlock_result(ch, err);
}

int corio_tchan_try_send(corio_tchan *ch, void *item)
{
    if (ch == NULL)
        return corio__einval();
    corio__tobj_lock(&ch->obj);
    return unlock_result(ch, put(ch, item));
}

int corio_tchan_try_recv(corio_tchan *ch, void **item)
{
    void *dummy;

    if (ch == NULL)
        return corio__einval();
    corio__tobj_lock(&ch->obj);
    return unlock_result(ch, take(ch, item != NULL ? item : &dummy));
}

int corio_tchan_close(corio_tchan *ch)
{
    int err = 0;

    if (ch == NULL)
        return corio__einval();
    corio__tobj_lock(&ch->obj);
    if (ch->closed) {
        err = CORIO_ECLOSED;
    } else {
        ch->closed = true;
        corio__tw_broadcast(&ch->obj, &ch->senders);
        corio__tw_broadcast(&ch->obj, &ch->receivers);
    }
    return unlock_result(ch, err);
}

bool corio_tchan_is_closed(corio_tchan *ch)
{
    bool closed;

    if (ch == NULL)
        return false;
    corio__tobj_lock(&ch->obj);
    closed = ch->closed;
    corio__tobj_unlock(&ch->obj);
    return closed;
}

size_t corio_tchan_len(corio_tchan *ch)
{
    size_t len;

    if (ch == NULL)
        return 0;
    corio__tobj_lock(&ch->obj);
    len = ch->len;
    corio__tobj_unlock(&ch->obj);
    return len;
}

size_t corio_tchan_cap(const corio_tchan *ch)
{
    return ch != NULL ? ch->cap : 0;
}
