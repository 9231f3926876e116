"""bench/peers.py -- the Python peers of corio's benchmarks, one workload per
process, printing one "RESULT key=value ..." line like bench/bench.c.

Run with Debian's interpreter (/usr/bin/python3), which has python3-greenlet:

  peers.py greenlet ROUNDTRIPS    greenlet ping-pong: main.switch() into a
                                  greenlet and g.switch() back: 2 switches
  peers.py generator ROUNDTRIPS   next(g) on `while True: yield`: one next is
                                  a round trip (into the frame and out): 2
                                  switches
  peers.py send ROUNDTRIPS        r = g.send(i) on `x = yield x + 1`: one
                                  round trip carrying an integer each way
  peers.py versions               interpreter and greenlet versions

Each timed loop is preceded by a warm-up of 100,000 round trips (0 with
--cold, for instruction counting where two runs are subtracted).
"""
import sys
import time

WARMUP = 100_000


def bench_greenlet(n, warmup):
    from greenlet import getcurrent, greenlet

    main = getcurrent()

    def body():
        sw = main.switch
        while True:
            sw()

    g = greenlet(body)
    sw = g.switch
    for _ in range(warmup):
        sw()
    t0 = time.perf_counter_ns()
    for _ in range(n):
        sw()
    t1 = time.perf_counter_ns()
    print(f"RESULT impl=greenlet roundtrips={n} switches={2 * n} ns={t1 - t0}")
    # The greenlet stays suspended; it is collected at exit (GreenletExit).


def bench_generator(n, warmup):
    def body():
        while True:
            yield

    g = body()
    for _ in range(warmup):
        next(g)
    t0 = time.perf_counter_ns()
    for _ in range(n):
        next(g)
    t1 = time.perf_counter_ns()
    print(f"RESULT impl=pygen roundtrips={n} switches={2 * n} ns={t1 - t0}")


def bench_send(n, warmup):
    def body():
        x = yield
        while True:
            x = yield x + 1

    g = body()
    next(g)
    send = g.send
    for i in range(warmup):
        send(i)
    s = 0
    t0 = time.perf_counter_ns()
    for i in range(n):
        s += send(i)
    t1 = time.perf_counter_ns()
    if s != n * (n + 1) // 2:
        sys.exit(f"peers.py: send: wrong sum {s}")
    print(f"RESULT impl=pygen_send roundtrips={n} ns={t1 - t0}")


def versions():
    try:
        import greenlet
        gv = greenlet.__version__
    except ImportError:
        gv = "missing"
    print(f"RESULT python={sys.version.split()[0]} greenlet={gv}")


def main(argv):
    if len(argv) >= 2 and argv[1] == "versions":
        versions()
        return
    if len(argv) < 3:
        sys.exit(__doc__)
    n = int(argv[2])
    warmup = 0 if "--cold" in argv[3:] else WARMUP
    work = {"greenlet": bench_greenlet, "generator": bench_generator,
            "send": bench_send}.get(argv[1])
    if work is None:
        sys.exit(__doc__)
    work(n, warmup)


if __name__ == "__main__":
    main(sys.argv)
