"""bench/proc/peer.py -- Python's multiprocessing on the workloads of
bench/proc/corio_pool.c, one per run:

    peer.py apply N SIZE        N trivial apply_async, then get() each: items/s
    peer.py map N SIZE CHUNK    Pool.map of N trivial items in chunks: items/s
    peer.py latency N SIZE      an asyncio task awaits one item at a time
                                (run_in_executor on a ProcessPoolExecutor),
                                N times: the median round trip (us)

Prints one line, as the corio program does."""
import asyncio
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import Pool


def inc(x):
    return x + 1


def apply(n, size):
    with Pool(size) as p:
        p.apply(inc, (0,))  # the workers are up
        t0 = time.perf_counter()
        rs = [p.apply_async(inc, (i,)) for i in range(n)]
        for r in rs:
            r.get()
        return n / (time.perf_counter() - t0)


def map_(n, size, chunk):
    with Pool(size) as p:
        p.apply(inc, (0,))
        t0 = time.perf_counter()
        p.map(inc, range(n), chunk)
        return n / (time.perf_counter() - t0)


def latency(n, size):
    async def main():
        loop = asyncio.get_running_loop()
        with ProcessPoolExecutor(size) as ex:
            await loop.run_in_executor(ex, inc, 0)
            ts = []
            for i in range(n):
                t0 = time.perf_counter()
                await loop.run_in_executor(ex, inc, i)
                ts.append(time.perf_counter() - t0)
            return statistics.median(ts) * 1e6
    return asyncio.run(main())


if __name__ == "__main__":
    what, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    if what == "apply":
        print("apply %.0f items/s" % apply(n, size))
    elif what == "map":
        print("map %.0f items/s" % map_(n, size, int(sys.argv[4])))
    else:
        print("latency %.1f us" % latency(n, size))
