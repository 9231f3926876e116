"""bench/driver.py -- runs corio's benchmarks and prints one table.

Called by scripts/bench (see there for the options). Every run of every
workload is its own process (BUILD/bench/corio_bench for the C side,
bench/peers.py under Debian's /usr/bin/python3 for the Python peers), so the
memory figures of one do not pollute another. Repetitions are interleaved
(all workloads once, then all again, ...) so that a burst of load from other
users of the machine hits every implementation alike; the table shows the
best run and, in brackets, the median.

Targets are judged on the best run; when the median disagrees the verdict
says so.
"""
import datetime
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import machine, parse_results, pin_prefix  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = "/usr/bin/python3"          # Debian's, with python3-greenlet
PEERS = os.path.join(ROOT, "bench", "peers.py")

PINGPONG_RT = 5_000_000          # round trips: 10,000,000 switches
GEN_RT = 5_000_000
SPAWN_COMPACT = 1_000_000
SPAWN_GUARDED = 30_000           # 2 mappings per stack, vm.max_map_count
SPAWN_REPS = 3                   # the spawns are slow: at most 3 runs
CG_SMALL, CG_LARGE = 200_000, 400_000
RUN_TIMEOUT = 180                # seconds, per process
REPORTING = "/sys/module/page_reporting/parameters/reported_kib"

TARGET_SWITCH_NS = 10.0
TARGET_GEN_RATIO = 10.0
TARGET_RSS_KIB = 4.5
TARGET_CREATE_S = 0.5


def die(msg):
    print(f"corio bench: {msg}", file=sys.stderr)
    sys.exit(1)


class Runner:
    def __init__(self, build, pin):
        self.bin = os.path.join(build, "bench", "corio_bench")
        self.pin = pin

    def run(self, argv, pin=True):
        cmd = (self.pin if pin else []) + argv
        try:
            p = subprocess.run(cmd, capture_output=True, text=True,
                               timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            die(f"timed out after {RUN_TIMEOUT} s: {' '.join(cmd)}")
        if p.returncode != 0:
            sys.stderr.write(p.stderr)
            die(f"failed (exit {p.returncode}): {' '.join(cmd)}")
        return parse_results(p.stdout)

    def c(self, *args):
        return self.run([self.bin] + [str(a) for a in args])

    def py(self, *args):
        return self.run([PY, PEERS] + [str(a) for a in args])


# ---- formatting ---------------------------------------------------------------

def fnum(x, digits=1):
    return f"{x:,.{digits}f}"


def best_med(xs):
    return min(xs), statistics.median(xs)


def verdict(ok_best, ok_med):
    if ok_best and ok_med:
        return "PASS"
    if ok_best:
        return "PASS (median MISS)"
    if ok_med:
        return "MISS (median PASS)"
    return "MISS"


# ---- the timed workloads ------------------------------------------------------

def timed(r, reps, have_fc, have_py):
    """Runs every workload `reps` times, interleaved; returns raw samples."""
    jobs = [
        ("corio", lambda: r.c("pingpong", "corio", PINGPONG_RT)),
        ("corio_fn", lambda: r.c("pingpong", "corio_fn", PINGPONG_RT)),
        ("gen_corio", lambda: r.c("gen", GEN_RT)),
    ]
    if have_fc:
        jobs.append(("fcontext", lambda: r.c("pingpong", "fcontext", PINGPONG_RT)))
    jobs.append(("ucontext", lambda: r.c("pingpong", "ucontext", PINGPONG_RT)))
    if have_py:
        jobs += [
            ("greenlet", lambda: r.py("greenlet", PINGPONG_RT)),
            ("pygen", lambda: r.py("generator", PINGPONG_RT)),
            ("gen_py", lambda: r.py("send", GEN_RT)),
        ]
    jobs.append(("probe", lambda: r.c("faultprobe")))
    # A cold compact spawn takes 2-12 s (its page faults): at most
    # SPAWN_REPS runs of the spawns.
    spawns = [
        ("compact", lambda: r.c("spawn", "compact", SPAWN_COMPACT)),
        ("guarded", lambda: r.c("spawn", "guarded", SPAWN_GUARDED)),
    ]
    samples = {name: [] for name, _ in jobs + spawns}
    for rep in range(reps):
        todo = jobs + (spawns if rep < SPAWN_REPS else [])
        print(f"  run {rep + 1} of {reps}: " + ", ".join(n for n, _ in todo),
              file=sys.stderr, flush=True)
        for name, job in todo:
            samples[name].append(job())
    return samples


def ns_per(rows, unit):
    row = rows[0]
    return int(row["ns"]) / int(row[unit])


def report_timed(s, have_fc, fc_kind, have_py, out):
    res = {}
    P = out.append

    # (a) ping-pong
    P("")
    P(f"(a) ping-pong: {2 * PINGPONG_RT:,} switches = {PINGPONG_RT:,} round "
      "trips (one switch in, one out)")
    P("    unit: ns per switch; peer/corio = how many times corio's time the "
      "peer takes")
    P(f"    {'implementation':<52} {'ns/switch':>9} {'[median]':>10} "
      f"{'peer/corio':>11}")
    cb, cm = best_med([ns_per(x, "switches") for x in s["corio"]])
    res["switch_best"], res["switch_med"] = cb, cm
    rows = [("corio: corio_coro_resume / corio_coro_yield", "corio"),
            ("corio, each side in a function that returns (*)", "corio_fn")]
    if have_fc:
        rows.append((f"Boost.Context fcontext: jump_fcontext ({fc_kind})",
                     "fcontext"))
    rows.append(("glibc ucontext: swapcontext (a syscall per switch)",
                 "ucontext"))
    if have_py:
        rows.append(("Python greenlet 2: g.switch() / main.switch()",
                     "greenlet"))
        rows.append(("CPython generator: next(g); 1 next = 2 switches",
                     "pygen"))
    for label, key in rows:
        b, m = best_med([ns_per(x, "switches") for x in s[key]])
        res[key] = b
        P(f"    {label:<52} {fnum(b, 2):>9} {'[' + fnum(m, 2) + ']':>10} "
          f"{fnum(b / cb, 2):>10}x")
    if not have_fc:
        P("    Boost.Context fcontext: skipped (libboost_context was not found "
          "when the build was configured)")
    P("    (*) resume and yield called from a function of the caller's that "
      "returns right after: after a stack")
    P("        switch that ret pops a return-stack entry pushed on the other "
      "stack and mispredicts, twice a trip.")
    if not have_py:
        P(f"    Python peers: skipped ({PY} with greenlet not available)")

    # (b) generators
    P("")
    P(f"(b) generator round trip carrying an integer: {GEN_RT:,} round trips "
      "(send i, the body does x = yield x + 1)")
    P("    unit: ns per round trip (one send + one yield = 2 switches)")
    P(f"    {'implementation':<52} {'ns/trip':>9} {'[median]':>10} "
      f"{'peer/corio':>11}")
    gb, gm = best_med([ns_per(x, "roundtrips") for x in s["gen_corio"]])
    P(f"    {'corio: corio_gen_send + corio_gen_yield, CORIO_INT(i)':<52} "
      f"{fnum(gb, 2):>9} {'[' + fnum(gm, 2) + ']':>10} {fnum(1, 2):>10}x")
    res["gen_best"], res["gen_med"] = gb, gm
    if have_py:
        pb, pm = best_med([ns_per(x, "roundtrips") for x in s["gen_py"]])
        P(f"    {'CPython: r = g.send(i)':<52} {fnum(pb, 2):>9} "
          f"{'[' + fnum(pm, 2) + ']':>10} {fnum(pb / gb, 2):>10}x")
        res["gen_ratio_best"] = pb / gb
        res["gen_ratio_med"] = pm / gm

    # (c) spawn and park
    probe = [x[0] for x in s["probe"]]
    fault_ns = statistics.median(float(p["stride64k_ns"]) for p in probe)
    fault_contig = statistics.median(float(p["contig_ns"]) for p in probe)
    res["fault_ns"] = fault_ns
    nspawn = len(s["compact"])
    P("")
    P("(c) spawn and park: create each coroutine and resume it once (its body "
      "yields); then finish all (resume")
    P("    each to return, free). Default 64 KiB stacks. cold = fresh memory; "
      "warm = the same count again in the")
    P("    same process after freeing the first batch (stacks from the pool, "
      "no new page). user/kernel = CPU time")
    P("    of create+park (getrusage: page faults are kernel time). RSS = VmHWM "
      "delta; PT = page tables, VmPTE")
    P("    delta (not in RSS); the harness's handle array is resident before "
      f"the baseline. Best of {nspawn} runs [median].")
    P(f"    {'mode':<7} {'count':>9} {'run':<4} {'create+park':>11} "
      f"{'[median]':>9} {'ns/coro':>7} {'user':>7} {'kernel':>7} "
      f"{'faults/coro':>11} {'finish':>7} {'RSS/coro':>9} {'PT/coro':>7}")
    for mode, count in (("compact", SPAWN_COMPACT), ("guarded", SPAWN_GUARDED)):
        for batch in ("cold", "warm"):
            runs = [next(r for r in x if r.get("batch") == batch)
                    for x in s[mode]]
            creates = [int(r["create_ns"]) / 1e9 for r in runs]
            finishes = [int(r["finish_ns"]) / 1e9 for r in runs]
            cbest, cmed = best_med(creates)
            br = runs[creates.index(cbest)]
            faults = int(br["create_faults"]) / count
            user = int(br["create_user_ns"]) / 1e9
            kern = int(br["create_sys_ns"]) / 1e9
            if batch == "cold":
                rss = f"{int(br['hwm_kb']) / count:.2f} KiB"
                pt = f"{int(br['pte_kb']) * 1024 / count:.0f} B"
                res[f"{mode}_rss_kib"] = int(br["hwm_kb"]) / count
                res[f"{mode}_cold_faults"] = int(br["create_faults"])
                res[f"{mode}_cold_cpu"] = (user, kern)
            else:
                rss = pt = "reused"
            P(f"    {mode:<7} {count:>9,} {batch:<4} {cbest:>9.3f} s "
              f"{'[' + f'{cmed:.3f}' + ']':>9} {cbest * 1e9 / count:>7,.0f} "
              f"{user:>5.2f} s {kern:>5.2f} s "
              f"{faults:>11.2f} {min(finishes):>5.3f} s {rss:>9} {pt:>7}")
            res[f"{mode}_{batch}"] = (cbest, cmed)
    P(f"    guarded: {SPAWN_GUARDED:,}, not 1,000,000: each stack is 2 kernel "
      "mappings and vm.max_map_count is "
      f"{read_int('/proc/sys/vm/max_map_count')}. The pool keeps")
    P("    256 guarded stacks per size, so the warm guarded run maps (and "
      "faults) almost all of them again.")
    nf = res["compact_cold_faults"]
    user, kern = res["compact_cold_cpu"]
    pred = nf * fault_ns / 1e9
    P(f"    page-fault probe (own process; mmap, touch one byte in each of "
      f"16,384 fresh pages): {fnum(fault_ns, 0)} ns")
    P(f"    per fault at 64 KiB stride (as the stacks), {fnum(fault_contig, 0)} "
      f"ns contiguous: {nf:,} faults x {fnum(fault_ns, 0)} ns = {pred:.2f} s.")
    P(f"    The cold compact run spent {kern:.2f} s in the kernel and "
      f"{user:.2f} s in user space.")
    if kern > 1.5 * pred:
        P("    The kernel time beyond the probe's prediction is the hypervisor "
          "backing guest memory at first touch")
        P("    (the probe's 16,384 pages mostly come from memory the host still "
          "backs); it varies from run to run.")
        if os.path.exists(REPORTING):
            P(f"    This VM hands freed memory back to the host (free page "
              f"reporting: {REPORTING}")
            P(f"    = {read_int(REPORTING):,}), so even memory that an "
              "earlier run freed faults on the host again.")
    return res


def read_int(path):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return "?"


# ---- callgrind ----------------------------------------------------------------

def callgrind_count(argv, outfile):
    """Total instructions of a run, and its callgrind profile in outfile."""
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={outfile}"] + argv
    try:
        p = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        die(f"timed out: {' '.join(cmd)}")
    for line in p.stderr.splitlines():
        if "Collected :" in line:
            return int(line.split(":")[-1].strip())
    sys.stderr.write(p.stderr)
    die(f"no callgrind total from: {' '.join(cmd)}")


def callgrind_functions(outfile):
    """Self instruction count per function of a profile: {name: count}.
    Code of bench/bench.c is lumped as the benchmark's own loops."""
    if shutil.which("callgrind_annotate") is None:
        return {}
    p = subprocess.run(["callgrind_annotate", "--threshold=100", outfile],
                       capture_output=True, text=True)
    fns = {}
    for line in p.stdout.splitlines():
        m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(\S+)", line)
        if m is None or ":" not in m.group(2):
            continue
        path, _, fn = m.group(2).rpartition(":")
        fn = fn.split("'")[0]
        if path.endswith("bench/bench.c"):
            fn = "benchmark loop"
        elif (fn == "corio__arch_switch" and not path.endswith(".S")
              and path != "???"):
            # the switch returns with a jmp, so callgrind charges the
            # caller's code after it to the switch: give it back by file
            fn = os.path.basename(path) + " after the switch"
        fns[fn] = fns.get(fn, 0) + int(m.group(1).replace(",", ""))
    return fns


def callgrind(r, have_fc, have_py, out):
    """Instructions per switch / round trip: (count(N2) - count(N1)) / (N2 - N1)
    round trips, no warm-up, so every fixed cost cancels. For the C runs, the
    same difference per function gives where the instructions go."""
    P = out.append
    d = CG_LARGE - CG_SMALL
    res = {}
    jobs = [("corio", [r.bin, "pingpong", "corio"],
             "corio: resume/yield ping-pong")]
    if have_fc:
        jobs.append(("fcontext", [r.bin, "pingpong", "fcontext"],
                     "Boost.Context fcontext: jump_fcontext"))
    jobs.append(("ucontext", [r.bin, "pingpong", "ucontext"],
                 "glibc ucontext: swapcontext (user-space part)"))
    jobs.append(("gen_corio", [r.bin, "gen"],
                 "corio: corio_gen_send + corio_gen_yield"))
    if have_py:
        jobs.append(("gen_py", [PY, PEERS, "send"],
                     "CPython: g.send(i), the loop of (b)"))
    P("")
    P(f"(d) instruction counts (valgrind --tool=callgrind; (count at "
      f"{CG_LARGE:,} - count at {CG_SMALL:,}) / {d:,} round trips,")
    P("    so start-up and set-up cancel; stable under load). Below a row: "
      "per round trip, by function.")
    P(f"    {'implementation':<52} {'per switch':>10} {'per trip':>9}")
    with tempfile.TemporaryDirectory(prefix="corio-bench-") as tmp:
        for key, argv, label in jobs:
            print(f"  callgrind: {key}", file=sys.stderr, flush=True)
            tail = ["0"] if argv[0] == r.bin else ["--cold"]
            fa, fb = os.path.join(tmp, f"{key}.a"), os.path.join(tmp, f"{key}.b")
            a = callgrind_count(argv + [str(CG_SMALL)] + tail, fa)
            b = callgrind_count(argv + [str(CG_LARGE)] + tail, fb)
            trip = (b - a) / d
            res[key] = trip
            P(f"    {label:<52} {fnum(trip / 2, 1):>10} {fnum(trip, 1):>9}")
            if argv[0] != r.bin or key == "ucontext":
                continue
            ca, cb = callgrind_functions(fa), callgrind_functions(fb)
            per = [(fn, (cb[fn] - ca.get(fn, 0)) / d) for fn in cb]
            per = sorted((x for x in per if x[1] >= 0.5), key=lambda x: -x[1])
            if per:
                P("      = " + " + ".join(f"{fn} {v:.0f}" for fn, v in per))
            if key == "corio" and not have_fc:
                P("    Boost.Context fcontext: skipped (libboost_context was "
                  "not found when the build was configured)")
    return res


# ---- main -----------------------------------------------------------------------

def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    opts = {a for a in argv[1:] if a.startswith("--")}
    unknown = opts - {"--callgrind", "--no-callgrind", "--quick"}
    if unknown or len(args) > 1:
        die("usage: scripts/bench [BUILD] [--callgrind | --no-callgrind] "
            "[--quick]")
    build = os.path.abspath(args[0] if args else os.path.join(ROOT, "build"))
    pin, pin_text = pin_prefix()
    r = Runner(build, pin)
    if not os.access(r.bin, os.X_OK):
        die(f"{r.bin} not found: build first (make bench, or cmake --build "
            f"{build} --target corio_bench)")
    fc = subprocess.run([r.bin, "has", "fcontext"], capture_output=True,
                        text=True)
    have_fc = fc.returncode == 0
    fc_kind = "static lib" if fc.stdout.strip().endswith(".a") else "shared lib"
    if not have_fc:
        print("corio bench: Boost fcontext peer skipped: libboost_context was "
              "not found when the build was configured", file=sys.stderr)
    have_py = False
    versions = "Python peers skipped"
    if os.access(PY, os.X_OK):
        v = subprocess.run([PY, PEERS, "versions"], capture_output=True,
                           text=True)
        rows = parse_results(v.stdout)
        if rows and rows[0].get("greenlet") != "missing":
            have_py = True
            versions = (f"CPython {rows[0]['python']} ({PY}), greenlet "
                        f"{rows[0]['greenlet']}")
    if not have_py:
        print(f"corio bench: Python peers skipped: {PY} with greenlet is "
              "missing (scripts/setup bench installs python3-greenlet)",
              file=sys.stderr)
    do_timed = "--callgrind" not in opts
    do_cg = "--no-callgrind" not in opts
    if do_cg and shutil.which("valgrind") is None:
        print("corio bench: valgrind not found: instruction counts skipped",
              file=sys.stderr)
        do_cg = False
    reps = 1 if "--quick" in opts else 5

    t0 = time.monotonic()
    out = []
    P = out.append
    P(f"corio benchmarks, {datetime.datetime.now():%Y-%m-%d %H:%M}")
    P(f"  machine: {machine()}; {pin_text}")
    P(f"  build: {build}; peers: {versions}")
    if do_timed:
        P(f"  timings: best of {reps} runs, each its own process "
          "(median in brackets); a shared machine makes them noisy")
    print(f"corio bench: running ({'timings' if do_timed else ''}"
          f"{' + ' if do_timed and do_cg else ''}"
          f"{'callgrind' if do_cg else ''}); about a minute",
          file=sys.stderr, flush=True)
    res = {}
    if do_timed:
        samples = timed(r, reps, have_fc, have_py)
        res.update(report_timed(samples, have_fc, fc_kind, have_py, out))
    cg = callgrind(r, have_fc, have_py, out) if do_cg else {}

    # Targets
    P("")
    P("targets (judged on the best run)")
    P(f"    {'target':<50} {'measured':>14}  verdict")

    def T(target, measured, v):
        P(f"    {target:<50} {measured:>14}  {v}")

    if do_timed:
        T(f"switch <= {TARGET_SWITCH_NS:g} ns", f"{res['switch_best']:.2f} ns",
          verdict(res["switch_best"] <= TARGET_SWITCH_NS,
                  res["switch_med"] <= TARGET_SWITCH_NS))
        if "gen_ratio_best" in res:
            T(f"generator round trip >= {TARGET_GEN_RATIO:g}x faster than "
              "CPython's", f"{res['gen_ratio_best']:.2f}x",
              verdict(res["gen_ratio_best"] >= TARGET_GEN_RATIO,
                      res["gen_ratio_med"] >= TARGET_GEN_RATIO))
        rss = res["compact_rss_kib"]
        T(f"compact: RSS <= {TARGET_RSS_KIB:g} KiB per coroutine",
          f"{rss:.2f} KiB", verdict(rss <= TARGET_RSS_KIB, rss <= TARGET_RSS_KIB))
        for batch in ("cold", "warm"):
            b, m = res[f"compact_{batch}"]
            v = verdict(b <= TARGET_CREATE_S, m <= TARGET_CREATE_S)
            if batch == "cold" and b > TARGET_CREATE_S:
                u, k = res["compact_cold_cpu"]
                v += (f": {k:.2f} s of it kernel time for "
                      f"{res['compact_cold_faults']:,} first-touch page "
                      f"faults (>= {res['compact_cold_faults'] * res['fault_ns'] / 1e9:.1f} s at the probe's "
                      f"{res['fault_ns']:,.0f} ns), {u:.2f} s user")
            T(f"compact: {SPAWN_COMPACT:,} created in <= {TARGET_CREATE_S:g} s, "
              f"{batch}", f"{b:.3f} s", v)
    if "corio" in cg and "fcontext" in cg:
        c, f = cg["corio"] / 2, cg["fcontext"] / 2
        T("instructions per switch < fcontext's", f"{c:.1f} vs {f:.1f}",
          "PASS" if c < f else "MISS")
    P("")
    P(f"({time.monotonic() - t0:.0f} s)")

    text = "\n".join(out)
    print(text)
    try:
        with open(os.path.join(build, "bench", "results.txt"), "w") as f:
            f.write(text + "\n")
    except OSError:
        pass


if __name__ == "__main__":
    main(sys.argv)
