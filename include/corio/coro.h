/* include/corio/coro.h -- coroutines, stacks, coroutine-local storage and
 * generators. Part of corio.h.
 *
 * A coroutine is a function running on its own stack. corio_coro_resume()
 * runs it until it calls corio_coro_yield() or returns; the next resume
 * continues after the yield. A coroutine runs on the thread that resumes
 * it. A suspended coroutine may be resumed by another thread (never by two at
 * once), but then its code must not keep the address of thread-local data
 * across a yield: compilers cache such addresses, errno's included (errno's
 * value itself is carried over by the switch). Tasks never move. */
#ifndef CORIO_CORO_H
#define CORIO_CORO_H

#include "corio/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef CORIO_EXPORT
#define CORIO_EXPORT __attribute__((visibility("default")))
#endif

/* On the calls whose result must never be ignored: reads, writes, sends and
 * receives, joins and waits, acquires, connects and accepts, spawns.
 * Ignoring it loses data or an error (a lock not held, a task no one can
 * join). Not on sleep, cancel, or the _free and _close calls. GCC warns even
 * through a (void) cast: handle the result. */
#define CORIO_WARN_UNUSED __attribute__((warn_unused_result))

/* ---- Time ----------------------------------------------------------------
 * Time is int64_t nanoseconds on the monotonic clock. */
#define CORIO_NSEC INT64_C(1)
#define CORIO_USEC INT64_C(1000)
#define CORIO_MSEC INT64_C(1000000)
#define CORIO_SECOND INT64_C(1000000000)

/* Nanoseconds on CLOCK_MONOTONIC. */
CORIO_EXPORT int64_t corio_now(void);

/* ---- Coroutines ---------------------------------------------------------- */
typedef struct corio_coro corio_coro;

/* The entry function of a coroutine; its return value is the coroutine's
 * result (corio_coro_result). */
typedef void *(*corio_fn)(void *arg);

/* How a coroutine's stack is allocated (docs/coro.md, "Stacks").
 * GUARDED: one mapping per stack with a 64 KiB PROT_NONE guard region below
 *   it; an overflow faults there and is reported by name before aborting
 *   (see corio_coro_set_overflow_handler). Build code that runs in
 *   coroutines with -fstack-clash-protection, so that no frame jumps over
 *   the guard. Each stack costs two kernel memory mappings, so a default
 *   kernel (vm.max_map_count = 65530) holds about 32,000 of them; past that,
 *   corio_coro_new falls back to a COMPACT stack instead of failing.
 * COMPACT: stacks carved from large shared slabs, no guard region; an
 *   overflow is caught at the coroutine's next switch by a check of its
 *   stack pointer and of a canary at the bottom of its stack. Until then it
 *   can corrupt the neighbouring stack, and an overflow that skips the
 *   canary and returns before the switch is not seen at all. Reaches
 *   millions of parked coroutines. */
enum corio_stack_mode {
    CORIO_STACK_GUARDED = 0,
    CORIO_STACK_COMPACT = 1,
};

/* The default stack size, in bytes. Only touched pages use memory. */
#define CORIO_STACK_DEFAULT (64 * 1024)
/* The smallest stack corio_coro_new accepts. */
#define CORIO_STACK_MIN (8 * 1024)

/* Options for corio_coro_new and corio_gen_new. A zeroed struct (or NULL)
 * gives the defaults. */
typedef struct corio_coro_attr {
    size_t stack_size;   /* bytes, rounded up to pages; 0 = CORIO_STACK_DEFAULT */
    enum corio_stack_mode stack_mode; /* default GUARDED */
    const char *name;    /* copied (first 31 bytes); NULL = unnamed */
} corio_coro_attr;

enum corio_coro_status {
    CORIO_CORO_SUSPENDED = 0, /* created and not started, or yielded */
    CORIO_CORO_RUNNING = 1,   /* the one running on this thread now */
    CORIO_CORO_NORMAL = 2,    /* active, but it resumed another coroutine */
    CORIO_CORO_DEAD = 3,      /* its function returned */
};

/* Create a coroutine that will run fn(arg) when first resumed. attr may be
 * NULL. Returns a new coroutine owned by the caller, or NULL with errno:
 * EINVAL (fn is NULL, bad stack_mode, stack_size below CORIO_STACK_MIN),
 * ENOMEM. */
CORIO_EXPORT corio_coro *corio_coro_new(corio_fn fn, void *arg,
                                        const corio_coro_attr *attr);

/* Run co until it yields or returns. Returns 0, or -1 with errno EINVAL
 * (co is NULL, running, or active under another resume) or CORIO_EDONE (co
 * is dead: it has returned). */
CORIO_EXPORT int corio_coro_resume(corio_coro *co);

/* Suspend the running coroutine and return to the one that resumed it.
 * Returns 0 when resumed again, or -1 with errno EPERM when called outside
 * any coroutine (the thread's own stack cannot yield). */
CORIO_EXPORT int corio_coro_yield(void);

/* The running coroutine, or NULL on the thread's own stack. */
CORIO_EXPORT corio_coro *corio_coro_self(void);

CORIO_EXPORT enum corio_coro_status corio_coro_status(const corio_coro *co);

/* The entry function's return value once co is DEAD, else NULL. */
CORIO_EXPORT void *corio_coro_result(const corio_coro *co);

/* A process-unique id (> 0), and the name given at creation ("" if none). */
CORIO_EXPORT uint64_t corio_coro_id(const corio_coro *co);
CORIO_EXPORT const char *corio_coro_name(const corio_coro *co);

/* Stack size in bytes (usable, excluding the guard region). */
CORIO_EXPORT size_t corio_coro_stack_size(const corio_coro *co);

/* Turn corio's SIGSEGV handler on or off, for the whole process. The
 * handler tells a coroutine's stack overflow from other faults: it reports
 * an overflow on stderr ("corio: stack overflow in coroutine NAME #ID ...")
 * and aborts, and hands any other fault to the action installed before it.
 * It is installed when the first coroutine is made, unless this was called
 * with false before. Programs with a SIGSEGV handler of their own call this
 * with false, ideally before making a coroutine; at any time, turning it off
 * restores the action it replaced (unless another handler has replaced it
 * since, which is then left alone). Off, a guarded stack's overflow is a
 * plain SIGSEGV; compact stacks are still checked at switches. Turning it on
 * installs it now and gives the calling thread an alternate signal stack
 * (other threads get one when they make a coroutine). Returns 0, or -1 with
 * errno from sigaction(2), or ENOMEM (the calling thread's alternate signal
 * stack could not be allocated; the handler is installed). */
CORIO_EXPORT int corio_coro_set_overflow_handler(bool enabled);

/* Free a coroutine that is DEAD or SUSPENDED. Freeing a suspended coroutine
 * runs its local-storage destructors but no code of its own: whatever its
 * function still owned is not released. corio_coro_free(NULL) is a no-op
 * returning 0. Returns -1 with errno EBUSY if co is running or normal. */
CORIO_EXPORT int corio_coro_free(corio_coro *co);

/* Give the calling thread's idle pooled stacks beyond the pool's bound
 * back to the system now, instead of after their decay (a second): for a
 * program that knows a burst is over. Returns 0. */
CORIO_EXPORT int corio_coro_trim(void);

/* ---- Coroutine-local storage ---------------------------------------------
 * Keys are process-wide (like pthread keys); each coroutine, and the
 * thread's own stack, has its own value per key, NULL until set. When a
 * coroutine finishes (or is freed), the destructor of each key whose value
 * is non-NULL is called with that value. */
typedef unsigned corio_key;

/* The most keys that can exist at once. */
#define CORIO_KEYS_MAX 128

/* Create a key. dtor may be NULL. Returns 0, or -1 with errno EAGAIN when
 * CORIO_KEYS_MAX keys exist, EINVAL if key is NULL. */
CORIO_EXPORT int corio_key_new(corio_key *key, void (*dtor)(void *));

/* Delete a key; values still bound are not destroyed. Returns 0, or -1 with
 * errno EINVAL for a key that does not exist. */
CORIO_EXPORT int corio_key_free(corio_key key);

/* The value bound to key in the running coroutine (or on the thread's own
 * stack); NULL if unset or the key does not exist. */
CORIO_EXPORT void *corio_local_get(corio_key key);

/* Bind value to key in the running coroutine. Returns 0, or -1 with errno
 * EINVAL (no such key) or ENOMEM. */
CORIO_EXPORT int corio_local_set(corio_key key, void *value);

/* ---- Generators ----------------------------------------------------------
 * Python's generators. A generator is a coroutine that yields values out and
 * receives values in:
 *
 *     static void *consumer(corio_gen *g, void *arg) {
 *         void *n, *r = "";
 *         while (corio_gen_yield(g, r, &n) == 0) { ... r = "200 OK"; }
 *         return NULL;     // corio_gen_yield failed: the generator is closing
 *     }
 *
 * Values are opaque pointers (use CORIO_INT / CORIO_TO_INT for integers). */
typedef struct corio_gen corio_gen;
typedef void *(*corio_gen_fn)(corio_gen *gen, void *arg);

#define CORIO_INT(i) ((void *)(intptr_t)(i))
#define CORIO_TO_INT(p) ((intptr_t)(p))

/* Create a generator that will run fn(gen, arg) at the first send. attr may
 * be NULL. Returns a new generator (freed by corio_gen_close), or NULL with
 * errno as corio_coro_new. */
CORIO_EXPORT corio_gen *corio_gen_new(corio_gen_fn fn, void *arg,
                                      const corio_coro_attr *attr);

/* Resume gen with value as the result of its pending yield (the first send
 * starts it and must send NULL, like send(None)). out (may be NULL) receives
 * the yielded value, or the return value when the generator is exhausted.
 * Returns 1 when gen yielded, 0 when it returned (exhausted: Python's
 * StopIteration), -1 with errno: EINVAL (gen NULL; non-NULL value sent to a
 * generator that has not started; gen already running), CORIO_EDONE (gen is
 * exhausted or closed: nothing more will come). */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_gen_send(corio_gen *gen, void *value, void **out);

/* corio_gen_send(gen, NULL, out): Python's next(gen). */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_gen_next(corio_gen *gen, void **out);

/* Inside gen: yield value to the sender and wait for the next send. in (may
 * be NULL) receives the sent value. Returns 0, or -1 with errno ECANCELED
 * when the generator is being closed (Python's GeneratorExit): clean up and
 * return. -1 with EINVAL if gen is not the running generator. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_gen_yield(corio_gen *gen, void *value, void **in);

/* Inside gen: delegate to inner until it is exhausted (Python's yield
 * from): every value inner yields goes to gen's sender, every value sent to
 * gen goes to inner. result (may be NULL) receives inner's return value.
 * inner stays owned by the caller. Returns 0, or -1 with errno ECANCELED
 * (gen is being closed: inner has been closed too and its cleanup has run;
 * its owner still frees it with corio_gen_close), EINVAL (gen is not the
 * running generator, inner is NULL or gen) or an error of corio_gen_send on
 * inner. */
CORIO_WARN_UNUSED
CORIO_EXPORT int corio_gen_yield_from(corio_gen *gen, corio_gen *inner,
                                      void **result);

/* True once gen has returned or been closed. */
CORIO_EXPORT bool corio_gen_is_done(const corio_gen *gen);

/* The underlying coroutine (for its id, name and status). A generator's body
 * suspends with corio_gen_yield only: resuming or yielding this coroutine
 * directly bypasses the generator's hand-over and is not supported. */
CORIO_EXPORT corio_coro *corio_gen_coro(corio_gen *gen);

/* Close and free gen. A generator suspended at a yield is resumed once with
 * that yield failing with ECANCELED, so its cleanup runs; a generator not
 * started or exhausted is just freed. corio_gen_close(NULL) returns 0.
 * Returns 0, or -1 with errno EPROTO when the generator yielded again instead
 * of returning (it is freed anyway, like Python's "generator ignored
 * GeneratorExit"), or EBUSY when gen is running (nothing is done). */
CORIO_EXPORT int corio_gen_close(corio_gen *gen);

#ifdef __cplusplus
}
#endif
#endif
