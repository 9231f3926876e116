"""bench/thread/peers.py -- Python's side of scripts/bench-thread.

    peers.py handoff N    N messages between two threads through
                          queue.Queue(maxsize=128) (thread-thread); an asyncio
                          task putting into an unbounded queue.Queue for a
                          thread (task-thread: put_nowait never blocks the
                          loop); a thread handing messages to an asyncio task
                          through loop.call_soon_threadsafe(q.put_nowait)
                          (thread-task, the idiom asyncio documents)
    peers.py pool N       an asyncio task awaits loop.run_in_executor(None, f)
                          and asyncio.to_thread(f), N times each

Prints the same RESULT lines as corio_bench_thread (impl=... added)."""
import asyncio
import queue
import sys
import threading
import time

CAP = 128


def result(**kv):
    print("RESULT " + " ".join(f"{k}={v}" for k, v in kv.items()), flush=True)


def handoff_threads(n):
    q = queue.Queue(maxsize=CAP)
    out = []

    def consume():
        s = 0
        while True:
            x = q.get()
            if x is None:
                break
            s += x
        out.append(s)

    def produce():
        for i in range(1, n + 1):
            q.put(i)
        q.put(None)

    t0 = time.perf_counter_ns()
    c = threading.Thread(target=consume)
    p = threading.Thread(target=produce)
    c.start()
    p.start()
    p.join()
    c.join()
    ns = time.perf_counter_ns() - t0
    assert out[0] == n * (n + 1) // 2
    return ns


def handoff_task_thread(n):
    q = queue.Queue()
    out = []

    def consume():
        s = 0
        while True:
            x = q.get()
            if x is None:
                break
            s += x
        out.append(s)

    async def produce():
        for i in range(1, n + 1):
            q.put_nowait(i)
        q.put_nowait(None)

    t0 = time.perf_counter_ns()
    c = threading.Thread(target=consume)
    c.start()
    asyncio.run(produce())
    c.join()
    ns = time.perf_counter_ns() - t0
    assert out[0] == n * (n + 1) // 2
    return ns


def handoff_thread_task(n):
    async def main():
        loop = asyncio.get_running_loop()
        q = asyncio.Queue()

        def produce():
            for i in range(1, n + 1):
                loop.call_soon_threadsafe(q.put_nowait, i)
            loop.call_soon_threadsafe(q.put_nowait, None)

        p = threading.Thread(target=produce)
        p.start()
        s = 0
        while True:
            x = await q.get()
            if x is None:
                break
            s += x
        p.join()
        assert s == n * (n + 1) // 2

    t0 = time.perf_counter_ns()
    asyncio.run(main())
    return time.perf_counter_ns() - t0


def empty():
    return None


async def pool(n, how):
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, empty)      # make the executor
    t0 = time.perf_counter_ns()
    for _ in range(n):
        if how == "run_in_executor":
            await loop.run_in_executor(None, empty)
        else:
            await asyncio.to_thread(empty)
    return time.perf_counter_ns() - t0


def main():
    what, n = sys.argv[1], int(sys.argv[2])
    if what == "handoff":
        for way, fn in (("thread-thread", handoff_threads),
                        ("task-thread", handoff_task_thread),
                        ("thread-task", handoff_thread_task)):
            ns = fn(n)
            result(impl="python", kind="handoff", way=way, n=n, ns=ns,
                   msgs_per_s=f"{n * 1e9 / ns:.0f}")
    elif what == "pool":
        for how in ("run_in_executor", "to_thread"):
            ns = asyncio.run(pool(n, how))
            result(impl=how, kind="pool", n=n, ns=ns,
                   us_per_call=f"{ns / n / 1000:.2f}")
    else:
        sys.exit(f"unknown workload {what}")


if __name__ == "__main__":
    main()
