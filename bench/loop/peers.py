"""bench/loop/peers.py -- the asyncio, uvloop and gevent peers of the
event-loop benchmarks, one workload per process, printing the same "RESULT
key=value ..." lines as corio_loop.c (see there for what each measures).

Run with Debian's interpreter, /usr/bin/python3 (python3-uvloop,
python3-gevent):

  peers.py spawn asyncio|uvloop|gevent N
      (a) N tasks that each sleep 1 s, then wait for all. asyncio, uvloop:
      loop.create_task(sleeper()) then gather; gevent: gevent.spawn then
      gevent.joinall.
  peers.py timers asyncio|uvloop|gevent N SEED
      (b) N timers at the schedule of common.h (splitmix64, whole ms 0..1000).
      asyncio, uvloop: loop.call_later(d, cb, i); gevent:
      gevent.spawn_later(d, cb, i) (a greenlet per timer, what gevent offers
      at that level).
  peers.py timers-tasks asyncio|uvloop|gevent N SEED
      (b') the same schedule as N tasks (greenlets) that each sleep d.
  peers.py pingpong asyncio|uvloop|gevent queue1|channel|event HANDOFFS REPS
      (c) two tasks pass a token back and forth. queue1: two
      asyncio.Queue(maxsize=1) / gevent.queue.Queue(maxsize=1); channel:
      gevent.queue.Channel (unbuffered, gevent only); event: two
      asyncio.Event / gevent.event.Event (set, wait, clear).
  peers.py versions

Lateness is actual - scheduled, where scheduled is time.monotonic() (the
clock of loop.time() in asyncio) read when the timer is armed, plus d.
"""
import sys
import time

WARMUP_HANDOFFS = 10_000


def vm_kib(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    return -1


def new_loop(impl):
    import asyncio
    if impl == "uvloop":
        import uvloop
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    return loop


def delays_ms(n, seed):
    """splitmix64, as bench_delays_ms in common.h."""
    mask = (1 << 64) - 1
    x = seed & mask
    out = [0] * n
    for i in range(n):
        x = (x + 0x9E3779B97F4A7C15) & mask
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        z ^= z >> 31
        out[i] = z % 1001
    return out


def stats(late):
    v = sorted(late)
    n = len(v)
    return {
        "mean": int(sum(v) / n),
        "p50": v[(n - 1) // 2],
        "p99": v[int((n - 1) * 0.99)],
        "max": v[-1],
        "min": v[0],
    }


def print_timers(impl, n, cpu_s, wall_s, late_s):
    st = stats([int(x * 1e9) for x in late_s])
    print(f"RESULT impl={impl} workload=timers n={n} "
          f"cpu_ns={int(cpu_s * 1e9)} wall_ns={int(wall_s * 1e9)} "
          f"late_mean_ns={st['mean']} late_p50_ns={st['p50']} "
          f"late_p99_ns={st['p99']} late_max_ns={st['max']} "
          f"late_min_ns={st['min']}")


# ---- (a) spawn ------------------------------------------------------------

def spawn_asyncio(impl, n):
    import asyncio
    loop = new_loop(impl)
    out = {}

    async def sleeper():
        await asyncio.sleep(1)

    async def main():
        create_task = loop.create_task
        out["hwm0"] = vm_kib("VmHWM:")
        t0 = time.perf_counter_ns()
        tasks = [create_task(sleeper()) for _ in range(n)]
        t1 = time.perf_counter_ns()
        await asyncio.gather(*tasks)
        t2 = time.perf_counter_ns()
        out["hwm1"] = vm_kib("VmHWM:")
        out["spawn"], out["total"] = t1 - t0, t2 - t0
        del tasks
        # a second round, memory reused
        t0 = time.perf_counter_ns()
        tasks = [create_task(sleeper()) for _ in range(n)]
        t1 = time.perf_counter_ns()
        await asyncio.gather(*tasks)
        out["spawn2"] = t1 - t0

    loop.run_until_complete(main())
    loop.close()
    return out


def spawn_gevent(n):
    import gevent
    out = {}

    def sleeper():
        gevent.sleep(1)

    spawn = gevent.spawn
    gevent.sleep(0)   # start the hub outside the timed part
    out["hwm0"] = vm_kib("VmHWM:")
    t0 = time.perf_counter_ns()
    gs = [spawn(sleeper) for _ in range(n)]
    t1 = time.perf_counter_ns()
    gevent.joinall(gs)
    t2 = time.perf_counter_ns()
    out["hwm1"] = vm_kib("VmHWM:")
    out["spawn"], out["total"] = t1 - t0, t2 - t0
    if not all(g.successful() for g in gs):
        sys.exit("peers.py: a greenlet failed")
    del gs
    t0 = time.perf_counter_ns()          # a second round, memory reused
    gs = [spawn(sleeper) for _ in range(n)]
    t1 = time.perf_counter_ns()
    gevent.joinall(gs)
    out["spawn2"] = t1 - t0
    return out


def run_spawn(impl, n):
    out = spawn_gevent(n) if impl == "gevent" else spawn_asyncio(impl, n)
    print(f"RESULT impl={impl} workload=spawn n={n} spawn_ns={out['spawn']} "
          f"total_ns={out['total']} hwm0_kib={out['hwm0']} "
          f"hwm1_kib={out['hwm1']} spawn2_ns={out['spawn2']}")


# ---- (b) timers -----------------------------------------------------------

def timers_asyncio(impl, n, seed, as_tasks):
    import asyncio
    loop = new_loop(impl)
    delays = [d / 1000 for d in delays_ms(n, seed)]
    sched = [0.0] * n
    late = [0.0] * n
    fired = [0]
    mono = time.monotonic

    def cb(i):
        late[i] = mono() - sched[i]
        fired[0] += 1
        if fired[0] == n:
            loop.stop()

    async def sleeper(i):
        sched[i] = mono() + delays[i]
        await asyncio.sleep(delays[i])
        late[i] = mono() - sched[i]

    async def main():
        tasks = [loop.create_task(sleeper(i)) for i in range(n)]
        await asyncio.gather(*tasks)

    c0, w0 = time.process_time(), time.perf_counter()
    if as_tasks:
        loop.run_until_complete(main())
    else:
        call_later = loop.call_later
        for i in range(n):
            d = delays[i]
            sched[i] = mono() + d
            call_later(d, cb, i)
        loop.run_forever()
    c1, w1 = time.process_time(), time.perf_counter()
    loop.close()
    print_timers(impl + ("_tasks" if as_tasks else ""), n, c1 - c0, w1 - w0,
                 late)


def timers_gevent(n, seed, as_tasks):
    import gevent
    from gevent.event import Event
    delays = [d / 1000 for d in delays_ms(n, seed)]
    sched = [0.0] * n
    late = [0.0] * n
    fired = [0]
    done = Event()
    mono = time.monotonic

    def cb(i):
        late[i] = mono() - sched[i]
        fired[0] += 1
        if fired[0] == n:
            done.set()

    def sleeper(i):
        sched[i] = mono() + delays[i]
        gevent.sleep(delays[i])
        cb(i)

    gevent.sleep(0)
    c0, w0 = time.process_time(), time.perf_counter()
    if as_tasks:
        spawn = gevent.spawn
        for i in range(n):
            spawn(sleeper, i)
    else:
        spawn_later = gevent.spawn_later
        for i in range(n):
            d = delays[i]
            sched[i] = mono() + d
            spawn_later(d, cb, i)
    done.wait()
    c1, w1 = time.process_time(), time.perf_counter()
    print_timers("gevent" + ("_tasks" if as_tasks else ""), n, c1 - c0,
                 w1 - w0, late)


def run_timers(impl, n, seed, as_tasks):
    if impl == "gevent":
        timers_gevent(n, seed, as_tasks)
    else:
        timers_asyncio(impl, n, seed, as_tasks)


# ---- (c) ping-pong --------------------------------------------------------

def pingpong_asyncio(impl, kind, rounds, reps):
    import asyncio
    loop = new_loop(impl)
    times = []

    async def pong_q(q1, q2):
        while True:
            x = await q1.get()
            if x is None:
                return
            await q2.put(x)

    async def ping_q(q1, q2, n):
        put, get = q1.put, q2.get
        for i in range(n):
            await put(i)
            await get()

    async def pong_e(e1, e2, stop):
        while True:
            await e1.wait()
            e1.clear()
            if stop[0]:
                return
            e2.set()

    async def ping_e(e1, e2, n):
        for _ in range(n):
            e1.set()
            await e2.wait()
            e2.clear()

    async def main():
        if kind == "queue1":
            a, b = asyncio.Queue(maxsize=1), asyncio.Queue(maxsize=1)
            pong = loop.create_task(pong_q(a, b))
            ping = ping_q
        else:
            a, b, stop = asyncio.Event(), asyncio.Event(), [False]
            pong = loop.create_task(pong_e(a, b, stop))
            ping = ping_e
        await ping(a, b, WARMUP_HANDOFFS // 2)
        for _ in range(reps):
            t0 = time.perf_counter_ns()
            await ping(a, b, rounds)
            times.append(time.perf_counter_ns() - t0)
        if kind == "queue1":
            await a.put(None)
        else:
            stop[0] = True
            a.set()
        await pong

    loop.run_until_complete(main())
    loop.close()
    return times


def pingpong_gevent(kind, rounds, reps):
    import gevent
    from gevent.event import Event
    from gevent.queue import Channel, Queue
    times = []

    def pong_q(q1, q2):
        get, put = q1.get, q2.put
        while True:
            x = get()
            if x is None:
                return
            put(x)

    def ping_q(q1, q2, n):
        put, get = q1.put, q2.get
        for i in range(n):
            put(i)
            get()

    def pong_e(e1, e2, stop):
        while True:
            e1.wait()
            e1.clear()
            if stop[0]:
                return
            e2.set()

    def ping_e(e1, e2, n):
        for _ in range(n):
            e1.set()
            e2.wait()
            e2.clear()

    if kind == "event":
        a, b, stop = Event(), Event(), [False]
        pong = gevent.spawn(pong_e, a, b, stop)
        ping = ping_e
    else:
        make = Channel if kind == "channel" else (lambda: Queue(maxsize=1))
        a, b = make(), make()
        pong = gevent.spawn(pong_q, a, b)
        ping = ping_q
    gevent.sleep(0)
    ping(a, b, WARMUP_HANDOFFS // 2)
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        ping(a, b, rounds)
        times.append(time.perf_counter_ns() - t0)
    if kind == "event":
        stop[0] = True
        a.set()
    else:
        a.put(None)
    pong.join()
    return times


def run_pingpong(impl, kind, handoffs, reps):
    rounds = handoffs // 2
    if impl == "gevent":
        times = pingpong_gevent(kind, rounds, reps)
    else:
        times = pingpong_asyncio(impl, kind, rounds, reps)
    print(f"RESULT impl={impl} workload=pingpong kind={kind} "
          f"handoffs={2 * rounds} ns={','.join(str(t) for t in times)}")


def versions():
    import gevent
    import greenlet
    import uvloop
    print(f"RESULT workload=versions python={sys.version.split()[0]} "
          f"uvloop={uvloop.__version__} gevent={gevent.__version__} "
          f"greenlet={greenlet.__version__} "
          f"gevent_loop={gevent.config.loop.__module__.split('.')[1]}")


def main(argv):
    try:
        if argv[0] == "spawn" and len(argv) == 3:
            return run_spawn(argv[1], int(argv[2]))
        if argv[0] in ("timers", "timers-tasks") and len(argv) == 4:
            return run_timers(argv[1], int(argv[2]), int(argv[3]),
                              argv[0] == "timers-tasks")
        if argv[0] == "pingpong" and len(argv) == 5:
            return run_pingpong(argv[1], argv[2], int(argv[3]), int(argv[4]))
        if argv[0] == "versions":
            return versions()
    except IndexError:
        pass
    sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
