"""bench/dist/driver.py -- the task-queue benchmark: end-to-end tasks per
second (a producer puts N tasks, W worker processes take them and send the
results back, the producer gets every result) with 1, 2 and 8 workers:
corio's manager with batches of 64 (take_many/ack_many/put_many, pipelined
result waits), corio without batches (one task per exchange), and Python's
multiprocessing.managers.BaseManager doing the seed's loop (D1/D2), in the
same run on the same machine. Called by scripts/bench-dist (see there)."""
import os
import subprocess
import sys

from dist_common import free_port, log, parse, run as trio_run

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"
WORKERS = [1, 2, 8]
TARGET = 30.0   # corio's manager (batched) against Python's managers


def corio_run(exe, workers, n, batch):
    port = free_port()
    url = "corio://127.0.0.1:%d" % port
    mgr = subprocess.Popen([exe, "manager", "127.0.0.1:%d" % port],
                           stdout=subprocess.PIPE, text=True)
    try:
        if mgr.stdout.readline().strip() != "READY":
            raise RuntimeError("the manager did not start")
        return trio_run(exe, url, workers, n, batch)
    finally:
        mgr.terminate()
        mgr.wait(timeout=10)


def python_run(workers, n):
    out = subprocess.run([PY, os.path.join(HERE, "py_manager.py"),
                          str(free_port()), str(workers), str(n)],
                         capture_output=True, text=True, timeout=600,
                         check=True).stdout
    return parse(out)


def main():
    build = sys.argv[1]
    quick = "--quick" in sys.argv[2:]
    exe = os.path.join(build, "bench", "dist", "dist_bench")
    n_batch, n_single, n_py = ((50_000, 5_000, 2_000) if quick
                               else (300_000, 20_000, 10_000))
    log("bench-dist: %d CPUs; tasks: corio batched %d, corio single %d, "
        "Python %d per run" % (os.cpu_count(), n_batch, n_single, n_py))
    print("%-8s %16s %16s %16s %9s" % ("workers", "corio batch64/s",
                                       "corio single/s", "python mgr/s",
                                       "ratio"))
    worst = None
    for w in WORKERS:
        b = corio_run(exe, w, n_batch, 64)
        s = corio_run(exe, w, n_single, 1)
        p = python_run(w, n_py)
        ratio = b / p
        worst = ratio if worst is None else min(worst, ratio)
        print("%-8d %16.0f %16.0f %16.0f %8.1fx" % (w, b, s, p, ratio),
              flush=True)
    print("target: corio's manager >= %.0fx Python's managers: %s "
          "(worst %.1fx)" % (TARGET, "met" if worst >= TARGET else "MISSED",
                             worst))


if __name__ == "__main__":
    main()
