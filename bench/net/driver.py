"""bench/net/driver.py -- the echo benchmark: every server on CPU 0, the
same epoll client (echo_client) on CPU 1, over loopback. 100 connections
doing request/response with 64-byte and 1 KiB messages for a bounded time;
then the memory each server holds per idle connection, with 10,000 idle
connections. Called by scripts/bench-net (see there for the options)."""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from benchlib import cpu_s, log, machine, parse_results, rss_kib  # noqa: E402

PY = "/usr/bin/python3"
PEERS = os.path.join(HERE, "peers.py")
CONNS = 100
SIZES = [64, 1024]
IDLE = 10_000
TARGETS = {"libuv": 1.0, "uvloop-protocol": 1.5, "asyncio-streams": 4.0}
TARGET_IDLE_KIB = 8.0


class Server:
    def __init__(self, argv, port):
        self.p = subprocess.Popen(["taskset", "-c", "0"] + argv + [str(port)],
                                  stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        if line.strip() != "READY":
            self.stop()
            raise RuntimeError(f"{argv[0]} did not start")

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def main(argv):
    build = argv[1] if len(argv) > 1 else "build"
    quick = "--quick" in argv
    secs = 2 if quick else 5
    bindir = os.path.join(os.path.abspath(build), "bench", "net")
    client = os.path.join(bindir, "echo_client")
    servers = [("corio", [os.path.join(bindir, "corio_echo")])]
    if os.access(os.path.join(bindir, "uv_echo"), os.X_OK):
        servers.append(("libuv", [os.path.join(bindir, "uv_echo")]))
    for kind in ("uvloop-protocol", "uvloop-streams", "asyncio-streams"):
        servers.append((kind, [PY, PEERS, kind]))
    port = 7500 + os.getpid() % 1000
    rate = {}
    cpu = {}    # server CPU microseconds per round trip
    idle = {}
    for size in SIZES:
        for name, cmd in servers:
            port += 1
            log(f"  {name}, {size} B, {CONNS} connections, {secs} s")
            srv = Server(cmd, port)
            try:
                cpu0 = cpu_s(srv.p.pid)
                out = subprocess.run(
                    ["taskset", "-c", "1", client, str(port), str(CONNS),
                     str(size), str(secs)], capture_output=True, text=True,
                    timeout=secs + 60)
                used = cpu_s(srv.p.pid) - cpu0
            finally:
                srv.stop()
            r = parse_results(out.stdout)
            if not r:
                sys.exit(f"echo_client failed: {out.stderr}")
            trips = int(r[0]["roundtrips"])
            rate[(name, size)] = trips / float(r[0]["seconds"])
            cpu[(name, size)] = used * 1e6 / max(trips, 1)
    for name, cmd in servers:
        port += 1
        log(f"  {name}: {IDLE:,} idle connections")
        srv = Server(cmd, port)
        try:
            before = rss_kib(srv.p.pid)
            cl = subprocess.Popen(["taskset", "-c", "1", client, str(port),
                                   "idle", str(IDLE)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
            ready = cl.stdout.readline().strip() == "READY"
            time.sleep(1.0)     # the server accepts the backlog
            after = rss_kib(srv.p.pid)
            cl.stdin.close()
            cl.wait(timeout=30)
        finally:
            srv.stop()
        if ready:
            idle[name] = (after - before) / IDLE

    tls_kib = None
    tls_idle = os.path.join(bindir, "tls_idle")
    if os.access(tls_idle, os.X_OK):
        log("  corio: 1,000 idle TLS connections")
        out = subprocess.run([tls_idle, "1000"], capture_output=True,
                             text=True, timeout=120)
        r = parse_results(out.stdout)
        if r:
            tls_kib = float(r[0]["kib_per_end"])

    names = [n for n, _ in servers]
    out = []
    P = out.append
    P(f"corio echo benchmark, {time.strftime('%Y-%m-%d %H:%M')}")
    P(f"  machine: {machine()}; servers on CPU 0, echo_client on CPU 1")
    P(f"  {CONNS} connections, request/response, {secs} s per cell; "
      "(Nx) = corio / peer (above 1: corio is faster)")
    P("")
    P(f"    {'server':<18}" + "".join(f"{f'{s} B trips/s':>22}" for s in SIZES)
      + f"{'idle conn KiB':>16}")
    for n in names:
        row = f"    {n:<18}"
        for s in SIZES:
            v = rate[(n, s)]
            ratio = rate[("corio", s)] / v
            row += f"{f'{v:,.0f} ({ratio:.2f}x)':>22}"
        row += f"{idle.get(n, float('nan')):>16.2f}"
        P(row)
    P("")
    P("  server CPU per round trip (user + system, from /proc; the client "
      "saturates CPU 1,")
    P("  so this is what a server costs; (Nx) = peer / corio, above 1: corio "
      "is cheaper)")
    P(f"    {'server':<18}" + "".join(f"{f'{s} B us/trip':>22}" for s in SIZES))
    for n in names:
        row = f"    {n:<18}"
        for s in SIZES:
            v = cpu[(n, s)]
            ratio = v / cpu[("corio", s)]
            row += f"{f'{v:.2f} ({ratio:.2f}x)':>22}"
        P(row)
    if tls_kib is not None:
        P("")
        P(f"  corio TLS: {tls_kib:.1f} KiB per idle TLS connection end "
          "(1,000 idle TLS 1.3 connections, both ends in one process)")
    P("")
    P("targets")
    for peer, want in TARGETS.items():
        if peer not in names:
            continue
        got = min(rate[("corio", s)] / rate[(peer, s)] for s in SIZES)
        P(f"    corio >= {want:.1f}x {peer:<18} worst of the sizes {got:.2f}x  "
          f"{'PASS' if got >= want else 'MISS'}")
    ci = idle.get("corio")
    if ci is not None:
        P(f"    corio <= {TARGET_IDLE_KIB:.0f} KiB per idle connection      "
          f"{ci:.2f} KiB  {'PASS' if ci <= TARGET_IDLE_KIB else 'MISS'}")
    text = "\n".join(out)
    print(text)
    with open(os.path.join(bindir, "results.txt"), "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main(sys.argv)
