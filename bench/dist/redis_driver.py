"""bench/dist/redis_driver.py -- the task queue on Redis: end-to-end tasks
per second (a producer puts N tasks, W worker processes take them and ack
them with their results, the producer takes every result) with 1, 2 and 4
workers, in batches of 64 and of 256 (put_many / take_many / ack_many /
result_take_many: a script call per batch, so its cost per task falls with
the batch) and without (one task per exchange), against what Redis
itself does on the same server in the same run: redis-benchmark's LPUSH
rate, one request at a time and pipelined by 16. Each run gets a fresh
redis-server on a free loopback port (nothing saved to disk). The corio
side is bench/dist/dist_bench (worker and producer roles, given a
redis:// URL). Called by scripts/bench-dist-redis (see there)."""
import os
import socket
import subprocess
import sys
import time

from dist_common import free_port, log, run as trio_run

WORKERS = [1, 2, 4]
TARGET = 100_000   # tasks/s end to end, batched
KEY = "bench"      # dist_bench's authkey: Redis's password here


class Redis:
    """A redis-server of the run's own."""

    def __enter__(self):
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--requirepass", KEY],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(500):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.1).close()
                return self
            except OSError:
                time.sleep(0.01)
        self.__exit__()
        raise RuntimeError("redis-server did not start")

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def corio_run(exe, workers, n, batch):
    with Redis() as r:
        url = "redis://127.0.0.1:%d" % r.port
        return trio_run(exe, url, workers, n, batch)


def lpush_rate(n, pipeline):
    with Redis() as r:
        out = subprocess.run(
            ["redis-benchmark", "-p", str(r.port), "-a", KEY, "-t", "lpush",
             "-n", str(n), "-P", str(pipeline), "--csv"],
            capture_output=True, text=True, timeout=300, check=True).stdout
    for line in out.splitlines():
        f = line.replace('"', "").split(",")
        if f[0] == "LPUSH":
            return float(f[1])
    raise RuntimeError("no LPUSH line in: " + out)


def main():
    build = sys.argv[1]
    quick = "--quick" in sys.argv[2:]
    exe = os.path.join(build, "bench", "dist", "dist_bench")
    n_batch, n_single, n_lpush = ((50_000, 5_000, 50_000) if quick
                                  else (300_000, 20_000, 100_000))
    log("bench-dist-redis: %d CPUs; tasks: batched %d, single %d per run; "
        "redis-benchmark -n %d" % (os.cpu_count(), n_batch, n_single, n_lpush))
    lp1 = lpush_rate(n_lpush, 1)
    lp16 = lpush_rate(n_lpush, 16)
    print("redis-benchmark LPUSH: %.0f/s, pipelined by 16: %.0f/s"
          % (lp1, lp16))
    print("%-8s %16s %16s %16s %12s %12s" % ("workers", "batch64 tasks/s",
                                              "batch256 tasks/s",
                                              "single tasks/s", "256/LPUSH",
                                              "256/LPUSH-P16"))
    best = 0.0
    for w in WORKERS:
        b64 = corio_run(exe, w, n_batch, 64)
        b = corio_run(exe, w, n_batch, 256)
        s = corio_run(exe, w, n_single, 1)
        best = max(best, b, b64)
        print("%-8d %16.0f %16.0f %16.0f %11.2fx %11.2fx"
              % (w, b64, b, s, b / lp1, b / lp16), flush=True)
    print("target: >= %d tasks/s end to end with batching: %s (best %.0f)"
          % (TARGET, "met" if best >= TARGET else "MISSED", best))


if __name__ == "__main__":
    main()
