"""bench/thread/driver.py -- runs the thread benchmarks and prints a table.

Called by scripts/bench-thread (see there for the options). corio's side is
BIN/corio_bench_thread, Python's bench/thread/peers.py under Debian's
/usr/bin/python3; each run is its own process, not pinned (the hand-offs
need two CPUs), and killed after RUN_TIMEOUT seconds.

  (a) hand-off: messages per second through a channel of 128 between a
      producer and a consumer: two plain threads (corio_tchan against
      queue.Queue), a task to a thread, a thread to a task;
  (b) pool latency: microseconds for a task to await an empty job on the
      default thread pool (corio_pool_run against asyncio's
      run_in_executor and to_thread).
"""
import datetime
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchlib import machine, parse_results  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"
PEERS = os.path.join(HERE, "peers.py")
RUN_TIMEOUT = 300

FULL = {"handoff": (2_000_000, 300_000), "pool": (50_000, 20_000)}
QUICK = {"handoff": (200_000, 50_000), "pool": (5_000, 2_000)}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(argv):
    try:
        p = subprocess.run(argv, capture_output=True, text=True,
                           timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        log(f"    timed out: {' '.join(argv)}")
        return []
    if p.returncode != 0:
        log(f"    failed ({p.returncode}): {' '.join(argv)}\n{p.stderr}")
        return []
    return parse_results(p.stdout)


def main():
    build = sys.argv[1]
    sizes = QUICK if "--quick" in sys.argv[2:] else FULL
    corio = os.path.join(build, "bench", "thread", "corio_bench_thread")
    log(f"corio bench-thread: {machine()}; "
        f"{datetime.datetime.now():%Y-%m-%d %H:%M}")

    nc, npy = sizes["handoff"]
    log(f"  (a) hand-off: corio {nc:,} messages, Python {npy:,}")
    c = {r["way"]: float(r["msgs_per_s"])
         for r in run([corio, "handoff", str(nc)])}
    py = {r["way"]: float(r["msgs_per_s"])
          for r in run([PY, PEERS, "handoff", str(npy)])}
    print("\n(a) hand-off through a channel of 128, messages/s "
          "(higher is better)")
    print(f"  {'way':<15}{'corio':>14}{'Python':>14}{'corio/Python':>14}")
    for way in ("thread-thread", "task-thread", "thread-task"):
        a, b = c.get(way), py.get(way)
        ratio = f"{a / b:.1f}x" if a and b else "-"
        print(f"  {way:<15}{a or 0:>14,.0f}{b or 0:>14,.0f}{ratio:>14}")
    print("  Python: queue.Queue(128) between threads; a task's put_nowait "
          "into a queue.Queue;\n  call_soon_threadsafe(asyncio.Queue."
          "put_nowait) from a thread")

    nc, npy = sizes["pool"]
    log(f"  (b) pool latency: corio {nc:,} calls, Python {npy:,}")
    c = run([corio, "pool", str(nc)])
    py = {r["impl"]: float(r["us_per_call"])
          for r in run([PY, PEERS, "pool", str(npy)])}
    print("\n(b) a task awaits an empty job on the default thread pool, "
          "µs per call (lower is better)")
    cu = float(c[0]["us_per_call"]) if c else None
    print(f"  corio_pool_run                 {cu or 0:>8.2f}")
    for impl in ("run_in_executor", "to_thread"):
        v = py.get(impl)
        ratio = f"{v / cu:.1f}x corio's" if v and cu else "-"
        print(f"  asyncio {impl:<23}{v or 0:>8.2f}   {ratio}")


if __name__ == "__main__":
    main()
