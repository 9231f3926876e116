"""bench/loop/driver.py -- runs the event-loop benchmarks and prints one table.

Called by scripts/bench-loop (see there for the options). Every run is its
own process: BIN/corio_bench_loop and BIN/uv_bench_loop for C,
bench/loop/peers.py under Debian's /usr/bin/python3 for asyncio, uvloop and
gevent, so that the memory figures of one never pollute another. Each
process is pinned with taskset (CORIO_BENCH_CPU, default 1) and killed after
RUN_TIMEOUT seconds.

Workloads (see corio_loop.c and peers.py for the code of each side):
  (a) spawn N tasks that each sleep 1 s, wait for all: spawn ns per task,
      total time beyond the 1 s, peak RSS growth per task;
  (b) 100,000 timers at whole-ms delays 0..1000 (one seed for all): process
      CPU time, lateness mean and p99; (b') the same as sleeping tasks;
  (c) ping-pong between two tasks: ns per hand-off through a channel /
      queue and through an event.
"""
import datetime
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchlib import machine, parse_results, pin_prefix  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PY = "/usr/bin/python3"          # Debian's, with python3-uvloop and -gevent
PEERS = os.path.join(HERE, "peers.py")

SPAWN_NS = [100_000, 1_000_000]
TIMERS_N = 100_000
SEED = 42
HANDOFFS = 1_000_000
QUICK_HANDOFFS_PY = 200_000      # --quick: Python peers' hand-offs
C_REPS = 3                       # ping-pong runs per corio process (median)
RUN_TIMEOUT = 150                # seconds, per process
MEM_FOR_1M_KIB = 12 * 1024 * 1024  # 1M-task runs need up to ~9 GB (gevent)

TARGET_SPAWN_RATIO = 50.0        # uvloop spawn ns / corio spawn ns
TARGET_TIMER_RATIO = 10.0        # uvloop CPU / corio CPU
TARGET_HANDOFF_NS = 50.0         # corio channel hand-off

PY_IMPLS = ["asyncio", "uvloop", "gevent"]
COLS = ["corio", "asyncio", "uvloop", "gevent", "libuv"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def die(msg):
    log(f"corio bench-loop: {msg}")
    sys.exit(1)


class Runner:
    def __init__(self, bindir, pin, raw):
        self.corio = os.path.join(bindir, "corio_bench_loop")
        self.uv = os.path.join(bindir, "uv_bench_loop")
        self.pin = pin
        self.raw = raw

    def run(self, argv):
        cmd = self.pin + argv
        t0 = time.monotonic()
        try:
            p = subprocess.run(cmd, capture_output=True, text=True,
                               timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            log(f"    timed out after {RUN_TIMEOUT} s: {' '.join(argv)}")
            return None
        dt = time.monotonic() - t0
        if p.returncode != 0:
            log(f"    failed ({p.returncode}): {' '.join(argv)}\n"
                f"{p.stderr.strip()}")
            return None
        rows = parse_results(p.stdout)
        for line in p.stdout.splitlines():
            if line.startswith("RESULT "):
                self.raw.append(line)
        log(f"    {os.path.basename(argv[0]) if argv[0] != PY else 'peers.py'}"
            f" {' '.join(str(a) for a in argv[1:] if a != PEERS)}: {dt:.1f} s")
        return rows[0] if rows else None

    def c(self, *args):
        return self.run([self.corio] + [str(a) for a in args])

    def libuv(self, *args):
        if not os.access(self.uv, os.X_OK):
            return None
        return self.run([self.uv] + [str(a) for a in args])

    def py(self, *args):
        return self.run([PY, PEERS] + [str(a) for a in args])


def mem_available_kib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    return 0


def other_benchmarks():
    """Other benchmark processes (pgrep -f 'scripts/bench|bench_'), not
    counting this driver's own ancestors."""
    mine = set()
    pid = os.getpid()
    while pid > 1:
        mine.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    try:
        out = subprocess.run(["pgrep", "-af", "scripts/bench|bench_"],
                             capture_output=True, text=True).stdout
    except OSError:
        return []
    return [l for l in out.splitlines()
            if l and int(l.split()[0]) not in mine]


def versions(r):
    row = r.py("versions") or {}
    uv = "?"
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}",
                              "libuv1-dev"], capture_output=True, text=True)
        uv = out.stdout.strip() or "?"
    except OSError:
        pass
    return (f"CPython {row.get('python', '?')}, uvloop {row.get('uvloop', '?')}"
            f", gevent {row.get('gevent', '?')} ({row.get('gevent_loop', '?')}"
            f", greenlet {row.get('greenlet', '?')}), libuv {uv}")


# ---- running -----------------------------------------------------------------

def run_all(r, quick):
    res = {"spawn": {}, "timers": {}, "tasks": {}, "pp": {}}
    spawn_ns = SPAWN_NS[:1] if quick else SPAWN_NS
    py_handoffs = QUICK_HANDOFFS_PY if quick else HANDOFFS
    res["py_handoffs"] = py_handoffs

    log("  (c) ping-pong")
    for kind in ("chan1", "chan0", "event"):
        res["pp"][("corio", kind)] = r.c("pingpong", kind, HANDOFFS, C_REPS)
    for impl in PY_IMPLS:
        kinds = ["queue1", "event"] + (["channel"] if impl == "gevent" else [])
        for kind in kinds:
            res["pp"][(impl, kind)] = r.py("pingpong", impl, kind,
                                           py_handoffs, 1)

    log("  (b) timers")
    res["timers"]["corio"] = r.c("timers", TIMERS_N, SEED)
    res["tasks"]["corio"] = r.c("timers-tasks", TIMERS_N, SEED)
    for impl in PY_IMPLS:
        res["timers"][impl] = r.py("timers", impl, TIMERS_N, SEED)
        res["tasks"][impl] = r.py("timers-tasks", impl, TIMERS_N, SEED)
    res["timers"]["libuv"] = r.libuv("timers", TIMERS_N, SEED)

    log("  (a) spawn")
    for n in spawn_ns:
        if n >= 1_000_000 and mem_available_kib() < MEM_FOR_1M_KIB:
            log(f"    skipped N={n:,}: less than "
                f"{MEM_FOR_1M_KIB // 1048576} GiB available")
            continue
        res["spawn"][("corio", n)] = r.c("spawn", n)
        for impl in PY_IMPLS:
            res["spawn"][(impl, n)] = r.py("spawn", impl, n)
        res["spawn"][("libuv", n)] = r.libuv("spawn", n)
    return res


# ---- the table -------------------------------------------------------------------

def fmt(x, digits):
    if x is None:
        return "n/a"
    return f"{x:,.{digits}f}"


def cell(v, base, digits, ratio=True):
    if v is None:
        return "n/a"
    s = fmt(v, digits)
    if ratio and base is not None and base > 0 and v > 0:
        s += f" ({v / base:,.1f}x)"
    return s


def ratio_verdict(vals, target):
    """PASS when uvloop's figure is at least target times corio's."""
    c, u = vals.get("corio"), vals.get("uvloop")
    if not c or not u:
        return "n/a"
    ratio = u / c
    return ("PASS" if ratio >= target else "MISS") + f" ({ratio:,.1f}x)"


def table(res):
    rows = []   # (label, {col: value}, digits, target text, verdict)

    def add(label, vals, digits, target="-", verdict="-", ratio=True):
        rows.append((label, vals, digits, target, verdict, ratio))

    # (a)
    for n in SPAWN_NS:
        got = {c: res["spawn"].get((c, n)) for c in COLS}
        if not any(got.values()):
            continue
        k = f"{n // 1000:,}k" if n < 1_000_000 else f"{n // 1_000_000}M"
        spawn = {c: (int(v["spawn_ns"]) / n if v else None)
                 for c, v in got.items()}
        over = {c: ((int(v["total_ns"]) - 1e9) / 1e6 if v else None)
                for c, v in got.items()}
        rss = {c: ((int(v["hwm1_kib"]) - int(v["hwm0_kib"])) * 1024 / n
                   if v else None) for c, v in got.items()}
        add(f"(a) spawn {k}: ns/task spawned", spawn, 0,
            f"uvloop/corio >= {TARGET_SPAWN_RATIO:.0f}x",
            ratio_verdict(spawn, TARGET_SPAWN_RATIO))
        spawn2 = {c: (int(v["spawn2_ns"]) / n if v and "spawn2_ns" in v
                      else None) for c, v in got.items()}
        add(f"(a) spawn {k}, 2nd round: ns/task", spawn2, 0,
            f"uvloop/corio >= {TARGET_SPAWN_RATIO:.0f}x",
            ratio_verdict(spawn2, TARGET_SPAWN_RATIO))
        add(f"(a) spawn {k}: ms beyond the 1 s", over, 0)
        add(f"(a) spawn {k}: peak RSS bytes/task", rss, 0)

    # (b)
    def timer_rows(tag, what, d, target):
        if not any(d.values()):
            return
        cpu = {c: (int(v["cpu_ns"]) / 1e6 if v else None) for c, v in d.items()}
        mean = {c: (int(v["late_mean_ns"]) / 1e6 if v else None)
                for c, v in d.items()}
        p99 = {c: (int(v["late_p99_ns"]) / 1e6 if v else None)
               for c, v in d.items()}
        verdict = ratio_verdict(cpu, TARGET_TIMER_RATIO) if target else "-"
        add(f"{tag} {what}: CPU ms", cpu, 0,
            f"uvloop/corio >= {TARGET_TIMER_RATIO:.0f}x" if target else "-",
            verdict)
        add(f"{tag} {what}: lateness mean ms", mean, 2)
        add(f"{tag} {what}: lateness p99 ms", p99, 2)

    timer_rows("(b)", "100k timers", dict(res["timers"]), True)
    timer_rows("(b')", "100k sleeping tasks", dict(res["tasks"]), False)

    # (c)
    def handoff_ns(v, median=True):
        if v is None:
            return None
        ns = [int(x) for x in v["ns"].split(",")]
        per = [x / int(v["handoffs"]) for x in ns]
        return statistics.median(per) if median else min(per)

    pp = res["pp"]
    best = {}
    for label, ck, peer_kind, gevent_kind in (
            ("(c) ns/hand-off: chan cap 1 | Queue(1)", "chan1", "queue1",
             "queue1"),
            ("(c) ns/hand-off: chan cap 0 | Channel", "chan0", None,
             "channel"),
            ("(c) ns/hand-off: event set/wait/clear", "event", "event",
             "event")):
        vals = {"corio": handoff_ns(pp.get(("corio", ck))), "libuv": None}
        best[ck] = handoff_ns(pp.get(("corio", ck)), median=False)
        for impl in ("asyncio", "uvloop"):
            vals[impl] = handoff_ns(pp.get((impl, peer_kind))) \
                if peer_kind else None
        vals["gevent"] = handoff_ns(pp.get(("gevent", gevent_kind)))
        target, verdict = "-", "-"
        if ck in ("chan1", "chan0"):
            target = f"corio <= {TARGET_HANDOFF_NS:.0f} ns"
            c = vals["corio"]
            verdict = "n/a" if c is None else \
                ("PASS" if c <= TARGET_HANDOFF_NS else "MISS") + \
                f" ({c:,.0f} ns)"
        add(label, vals, 0, target, verdict)

    # Layout.
    lw = max(len(r[0]) for r in rows)
    cells = [[cell(r[1].get(c), r[1].get("corio"), r[2], r[5])
              for c in COLS] for r in rows]
    cw = [max(len(c), max(len(x[i]) for x in cells))
          for i, c in enumerate(COLS)]
    tw = max(len("target"), max(len(r[3]) for r in rows))
    out = []
    head = f"{'workload':<{lw}}  " + "  ".join(
        f"{c:>{cw[i]}}" for i, c in enumerate(COLS)) + \
        f"  {'target':<{tw}}  verdict"
    out.append(head)
    out.append("-" * len(head))
    for r, cs in zip(rows, cells):
        out.append(f"{r[0]:<{lw}}  " + "  ".join(
            f"{x:>{cw[i]}}" for i, x in enumerate(cs)) +
            f"  {r[3]:<{tw}}  {r[4]}")
    return out, best


def main(argv):
    quick = "--quick" in argv
    args = [a for a in argv if not a.startswith("--")]
    if len(args) != 1:
        die("usage: driver.py BUILD [--quick]")
    build = os.path.abspath(args[0])
    bindir = None
    for d in ("bench/loop", "bench-loop"):
        if os.access(os.path.join(build, d, "corio_bench_loop"), os.X_OK):
            bindir = os.path.join(build, d)
            break
    if bindir is None:
        die(f"no corio_bench_loop in {build}/bench/loop or {build}/bench-loop")
    pin, pin_text = pin_prefix()
    others = other_benchmarks()
    raw = []
    r = Runner(bindir, pin, raw)
    t0 = time.monotonic()
    log(f"corio bench-loop: {bindir}, {pin_text}"
        + (", --quick" if quick else ""))
    for line in others:
        log(f"  warning: another benchmark is running: {line}")
    vers = versions(r)
    res = run_all(r, quick)
    lines, best = table(res)
    elapsed = time.monotonic() - t0
    py_h = res["py_handoffs"]
    head = [
        "",
        f"corio event-loop benchmarks, {datetime.datetime.now():%Y-%m-%d %H:%M}",
        f"  {machine()}; {pin_text}; one process per cell",
        f"  {vers}",
        f"  ratios: (Nx) = peer / corio (above 1: corio is better)",
        f"  (a) corio: corio_task_spawn with attr.stack_mode = CORIO_STACK_COMPACT "
        f"(64 KiB slots), corio_task_join_all;",
        f"      asyncio/uvloop: create_task + gather; gevent: spawn + joinall;"
        f" libuv: one uv_timer_t per task (no tasks in libuv)",
        f"  (b) whole-ms delays 0..1000, seed {SEED}; CPU = getrusage / "
        f"process_time from the first arm to the last callback;",
        f"      corio: corio_loop_call_later; asyncio/uvloop: loop.call_later; "
        f"gevent: spawn_later; libuv: uv_timer_start",
        f"  (c) corio: {HANDOFFS:,} hand-offs, median of {C_REPS} runs "
        f"(best: chan1 {fmt(best.get('chan1'), 0)}, chan0 "
        f"{fmt(best.get('chan0'), 0)}, event {fmt(best.get('event'), 0)} ns);"
        f" peers: {py_h:,} hand-offs, 1 run",
        f"      Queue(1): asyncio.Queue(maxsize=1) / gevent.queue.Queue"
        f"(maxsize=1); Channel: gevent.queue.Channel (asyncio has none)",
        "",
    ]
    if others:
        head.insert(3, "  WARNING: other benchmarks were running: timings "
                       "are not trustworthy")
    text = "\n".join(head + lines +
                     ["", f"  ({elapsed:.0f} s in all)", ""])
    print(text)
    try:
        with open(os.path.join(bindir, "results.txt"), "w") as f:
            f.write(text + "\n" + "\n".join(raw) + "\n")
    except OSError:
        pass


if __name__ == "__main__":
    main(sys.argv[1:])
