"""bench/dist/dist_common.py -- what the task-queue benchmarks share
(driver.py on corio's manager, redis_driver.py on Redis): their log (to
stderr), a free loopback port, and one run of dist_bench's producer with W
workers against a URL, read from its TASKS line."""
import socket
import subprocess
import sys


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse(out):
    """Tasks per second from a "TASKS n SECONDS s" line."""
    for line in out.splitlines():
        f = line.split()
        if len(f) == 4 and f[0] == "TASKS" and f[2] == "SECONDS":
            return int(f[1]) / float(f[3])
    raise RuntimeError("no TASKS line in: " + out)


def run(exe, url, workers, n, batch):
    """W workers and a producer of n tasks in batches of batch (1: none)
    against url; the producer's tasks per second."""
    ws = [subprocess.Popen([exe, "worker", url, str(batch)])
          for _ in range(workers)]
    out = subprocess.run([exe, "producer", url, str(n), str(batch)],
                         capture_output=True, text=True, timeout=300,
                         check=True).stdout
    for w in ws:
        if w.wait(timeout=60) != 0:
            raise RuntimeError("a worker failed")
    return parse(out)
