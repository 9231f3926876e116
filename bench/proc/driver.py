"""bench/proc/driver.py BUILD [--quick] -- the process pool benchmark:
corio's pool (bench/proc/corio_pool.c) against Python's multiprocessing
(bench/proc/peer.py), in the same run, with the same pool size (the CPUs
this process may use), and the ratios. Each cell is the best of 3 runs
(1 with --quick, and smaller counts)."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return float(out.split()[1])


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    quick = "--quick" in sys.argv
    build = args[0] if args else "build"
    corio = os.path.join(build, "bench", "proc", "corio_pool")
    peer = [sys.executable, os.path.join(HERE, "peer.py")]
    size = str(len(os.sched_getaffinity(0)))
    reps = 1 if quick else 3
    k = 1 if quick else 5
    cells = [
        # name, corio's args, peer's args, higher is better, unit
        ("apply_async, chunksize 1", ["apply", str(100000 * k), size],
         ["apply", str(10000 * k), size], True, "items/s"),
        ("map, chunksize 100", ["map", str(200000 * k), size, "100"],
         ["map", str(200000 * k), size, "100"], True, "items/s"),
        ("task awaiting a result", ["latency", str(2000 * k), size],
         ["latency", str(1000 * k), size], False, "us"),
    ]
    print("process pool, %s workers (%s)" % (size, "quick" if quick else "full"))
    print("%-26s %8s %14s %16s %8s" % ("workload", "unit", "corio", "multiprocessing", "ratio"))
    for name, ca, pa, higher, unit in cells:
        pick = max if higher else min
        c = pick(run([corio] + ca) for _ in range(reps))
        p = pick(run(peer + pa) for _ in range(reps))
        ratio = c / p if higher else p / c
        print("%-26s %8s %14.1f %16.1f %7.1fx" % (name, unit, c, p, ratio))
    print("(ratio: how many times better corio is; latency is the median "
          "round trip, lower is better)")


if __name__ == "__main__":
    main()
