"""bench/benchlib.py -- what the benchmark drivers share (bench/driver.py
for the coroutines, bench/loop/driver.py for the event loop, bench/net and
bench/http for the servers): the RESULT lines the programs print, the
machine's description, CPU pinning, a process's CPU time and RSS."""
import os
import platform
import shutil
import sys


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def cpu_s(pid):
    """User + system CPU seconds of pid so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def parse_results(out):
    """The "RESULT key=value ..." lines of a run, as a list of dicts."""
    rows = []
    for line in out.splitlines():
        if line.startswith("RESULT "):
            row = {}
            for kv in line.split()[1:]:
                k, _, v = kv.partition("=")
                row[k] = v
            rows.append(row)
    return rows


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} CPUs, Linux {platform.release()}"


def pin_prefix():
    """taskset's prefix for CORIO_BENCH_CPU (default CPU 1 on a machine with
    two or more; "none": no pinning), and how to say it."""
    cpu = os.environ.get("CORIO_BENCH_CPU")
    if cpu is None:
        cpu = "1" if (os.cpu_count() or 1) >= 2 else "none"
    if cpu == "none" or shutil.which("taskset") is None:
        return [], "not pinned"
    return ["taskset", "-c", cpu], f"pinned with taskset -c {cpu}"
