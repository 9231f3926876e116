"""bench/ipc/driver.py -- the Queue and Pipe benchmark: messages per second
between two processes, corio's Queue and Pipe against Python's
multiprocessing.Queue and multiprocessing.Pipe, 64-byte and 4 KiB
messages, in the same run; prints the rates and the ratios against the
targets (Queue >= 100x, Pipe >= 20x). Each cell is the best of RUNS runs.
Beside them, the bytes per second each rate moves from one core to the
other, what the target would need, and a reference: a bare one-producer
one-consumer ring that copies each message in and out (copy_ring.c). A
target that needs more bytes per second than the cores of this machine
exchange cannot be met by any queue that hands over a copy.
Called by scripts/bench-ipc (see there for the options)."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from benchlib import machine, parse_results  # noqa: E402

PY = "/usr/bin/python3"
SIZES = [64, 4096]
TARGETS = {"queue": 100.0, "pipe": 20.0}


def best_rate(argv, runs):
    best = 0.0
    for _ in range(runs):
        out = subprocess.run(argv, check=True, capture_output=True,
                             text=True, timeout=600).stdout
        best = max(best, float(parse_results(out)[0]["rate"]))
    return best


def main():
    build = sys.argv[1]
    quick = "--quick" in sys.argv[2:]
    runs = 1 if quick else 3
    n_corio = 200_000 if quick else 2_000_000
    n_py = 20_000 if quick else 200_000
    corio = os.path.join(build, "bench", "ipc", "corio_ipc")
    ring = os.path.join(build, "bench", "ipc", "copy_ring")
    print(f"# IPC between two processes ({machine()})")
    print("# reference: a bare 1-producer 1-consumer ring copying in and out: " +
          ", ".join(f"{size} B {r:,.0f} msg/s ({r * size / 1e9:.1f} GB/s)"
                    for size in SIZES
                    for r in [best_rate([ring, str(size), str(n_corio)], runs)]))
    print(f"{'kind':<6} {'size':>5} {'corio msg/s':>13} {'GB/s':>6} "
          f"{'multiprocessing':>16} {'ratio':>8} {'target':>7} "
          f"{'needs GB/s':>11}")
    missed = []
    for kind in ("queue", "pipe"):
        for size in SIZES:
            c = best_rate([corio, kind, str(size), str(n_corio)], runs)
            p = best_rate([PY, os.path.join(HERE, "mp_ipc.py"), kind,
                           str(size), str(n_py)], runs)
            ratio = c / p
            ok = ratio >= TARGETS[kind]
            if not ok:
                missed.append(f"{kind} {size} B")
            print(f"{kind:<6} {size:>5} {c:>13,.0f} {c * size / 1e9:>6.1f} "
                  f"{p:>16,.0f} {ratio:>7.1f}x {TARGETS[kind]:>6.0f}x "
                  f"{TARGETS[kind] * p * size / 1e9:>11.1f}"
                  f"{'' if ok else '  (missed)'}", flush=True)
    if missed:
        print("targets missed: " + ", ".join(missed))


if __name__ == "__main__":
    main()
