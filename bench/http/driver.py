"""bench/http/driver.py -- the HTTP server benchmark: every server on CPU 0,
wrk (-t1 -c100, keep-alive) on CPU 1, GET / answering the 13 bytes
"Hello, World!" over loopback: corio (one loop), nginx (one worker, no
master), h2o (one thread), aiohttp and aiohttp on uvloop. Prints each
server's requests/s and its CPU time per request (user + system, from
/proc), then the memory corio holds per idle keep-alive connection
(RSS before and after N idle connections). Called by scripts/bench-http
(see there for the options)."""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from benchlib import cpu_s, log, machine, rss_kib  # noqa: E402

PY = "/usr/bin/python3"
CONNS = 100
TARGETS = {"nginx": 1.0, "aiohttp": 10.0}
TARGET_IDLE_KIB = 8.0


def wait_port(port, proc, secs=10):
    end = time.time() + secs
    while time.time() < end:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def nginx_argv(tmp, port):
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""daemon off; master_process off; worker_processes 1;
pid {tmp}/nginx.pid; error_log {tmp}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp};
  uwsgi_temp_path {tmp}; scgi_temp_path {tmp};
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{port};
    location = / {{ default_type text/plain; return 200 "Hello, World!"; }}
  }}
}}
""")
    return ["nginx", "-p", tmp, "-c", conf]


def h2o_argv(tmp, port):
    root = os.path.join(tmp, "www")
    os.makedirs(root, exist_ok=True)
    # h2o started as root serves as "nobody": the files must be readable
    os.chmod(tmp, 0o755)
    os.chmod(root, 0o755)
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("Hello, World!")
    os.chmod(os.path.join(root, "index.html"), 0o644)
    conf = os.path.join(tmp, "h2o.conf")
    with open(conf, "w") as f:
        f.write(f"""num-threads: 1
listen:
  host: 127.0.0.1
  port: {port}
error-log: {tmp}/h2o-error.log
hosts:
  default:
    paths:
      /:
        file.dir: {root}
""")
    return ["h2o", "-m", "worker", "-c", conf]


def start(argv, port):
    p = subprocess.Popen(["taskset", "-c", "0"] + argv, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    if not wait_port(port, p):
        stop(p)
        return None
    return p


def stop(p):
    p.terminate()
    try:
        p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def wrk(port, secs):
    out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", f"-c{CONNS}",
                          f"-d{secs}s", f"http://127.0.0.1:{port}/"],
                         capture_output=True, text=True, timeout=secs + 60).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    n = re.search(r"(\d+) requests in", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if not m or not n or bad:
        return None, None
    return float(m.group(1)), int(n.group(1))


def main(argv):
    build = argv[1] if len(argv) > 1 else "build"
    quick = "--quick" in argv
    secs = 2 if quick else 10
    idle_n = 500 if quick else 5000
    corio = os.path.join(os.path.abspath(build), "bench", "http", "corio_http")
    peers = os.path.join(HERE, "peers.py")
    servers = [("corio", lambda t, p: [corio, str(p)])]
    if shutil.which("nginx"):
        servers.append(("nginx", nginx_argv))
    if shutil.which("h2o"):
        servers.append(("h2o", h2o_argv))
    for kind in ("aiohttp", "aiohttp-uvloop"):
        servers.append((kind, lambda t, p, k=kind: [PY, peers, k, str(p)]))
    port = 8600 + os.getpid() % 1000
    rate, cpu = {}, {}
    for name, make in servers:
        port += 1
        log(f"  {name}: wrk -t1 -c{CONNS} -d{secs}s")
        with tempfile.TemporaryDirectory() as tmp:
            p = start(make(tmp, port), port)
            if p is None:
                log(f"  {name} did not start: skipped")
                continue
            try:
                c0 = cpu_s(p.pid)
                rps, n = wrk(port, secs)
                used = cpu_s(p.pid) - c0
            finally:
                stop(p)
        if rps is None:
            log(f"  {name}: wrk failed: skipped")
            continue
        rate[name] = rps
        cpu[name] = used * 1e6 / max(n, 1)

    port += 1
    log(f"  corio: {idle_n:,} idle keep-alive connections")
    idle_kib = None
    p = start([corio, str(port)], port)
    if p is not None:
        try:
            time.sleep(0.2)
            before = rss_kib(p.pid)
            cl = subprocess.Popen(["taskset", "-c", "1", PY,
                                   os.path.join(HERE, "idle.py"), str(port), str(idle_n)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            ready = cl.stdout.readline().strip() == "READY"
            time.sleep(0.5)
            after = rss_kib(p.pid)
            cl.stdin.close()
            cl.wait(timeout=60)
            if ready:
                idle_kib = (after - before) / idle_n
        finally:
            stop(p)

    out = []
    P = out.append
    P(f"corio HTTP benchmark, {time.strftime('%Y-%m-%d %H:%M')}")
    P(f"  machine: {machine()}; servers on CPU 0, wrk -t1 -c{CONNS} on CPU 1")
    P(f"  GET / -> 13 bytes, keep-alive, {secs} s per server; (Nx) = corio / peer "
      "requests/s (above 1: corio is faster); CPU (Nx) = peer / corio")
    P("")
    P(f"    {'server':<16}{'requests/s':>22}{'CPU us/request':>22}")
    for name, _ in servers:
        if name not in rate:
            continue
        r = rate["corio"] / rate[name] if "corio" in rate else float("nan")
        c = cpu[name] / cpu["corio"] if "corio" in cpu else float("nan")
        P(f"    {name:<16}{f'{rate[name]:,.0f} ({r:.2f}x)':>22}"
          f"{f'{cpu[name]:.2f} ({c:.2f}x)':>22}")
    P("")
    if idle_kib is not None:
        P(f"  corio: {idle_kib:.2f} KiB RSS per idle keep-alive connection "
          f"({idle_n:,} connections, each after one request)")
    P("")
    P("targets")
    for peer, want in TARGETS.items():
        if peer in rate and "corio" in rate:
            got = rate["corio"] / rate[peer]
            P(f"    corio >= {want:.1f}x {peer:<10} requests/s   {got:.2f}x  "
              f"{'PASS' if got >= want else 'MISS'}")
    if "nginx" in cpu and "corio" in cpu:
        P(f"    corio CPU/request <= nginx's          {cpu['corio']:.2f} vs "
          f"{cpu['nginx']:.2f} us  {'PASS' if cpu['corio'] <= cpu['nginx'] else 'MISS'}")
    if idle_kib is not None:
        P(f"    corio <= {TARGET_IDLE_KIB:.0f} KiB per idle connection        "
          f"{idle_kib:.2f} KiB  {'PASS' if idle_kib <= TARGET_IDLE_KIB else 'MISS'}")
    text = "\n".join(out)
    print(text)
    os.makedirs(os.path.join(os.path.abspath(build), "bench", "http"), exist_ok=True)
    with open(os.path.join(os.path.abspath(build), "bench", "http", "results.txt"), "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main(sys.argv)
