"""bench/http_client/driver.py -- the HTTP client benchmark: nginx serves a
1 KiB file on CPU 0 (one worker, keep-alive); on CPU 1 the same number of
connections fetch it with corio's client (corio_get), aiohttp's
ClientSession, and wrk (the limit: a load generator that does nothing with
the answers). Then WebSocket echo: corio's client with corio's server
against aiohttp's client with aiohttp's server, each server on CPU 0 and
its client on CPU 1. Called by scripts/bench-http-client."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from benchlib import machine  # noqa: E402

PY = "/usr/bin/python3"
PEERS = os.path.join(HERE, "peers.py")
CONNS = 50
WS_CONNS = 50
WS_SIZE = 64
TARGETS = {"aiohttp": 10.0, "wrk": 0.7}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def fields(out):
    """"requests 12 seconds 2.0 ..." as a dict."""
    w = out.split()
    return {w[i]: float(w[i + 1]) for i in range(0, len(w) - 1, 2)}


def nginx(tmp, port):
    root = os.path.join(tmp, "www")
    os.makedirs(root)
    with open(os.path.join(root, "1k.txt"), "w") as f:
        f.write("x" * 1024)
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""error_log {tmp}/error.log; pid {tmp}/nginx.pid;
worker_processes 1; events {{ worker_connections 1024; }}
http {{ access_log off; keepalive_requests 1000000; keepalive_timeout 60;
  client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp};
  uwsgi_temp_path {tmp}; scgi_temp_path {tmp};
  server {{ listen 127.0.0.1:{port}; root {root}; }} }}
""")
    os.chmod(tmp, 0o755)
    p = subprocess.Popen(["taskset", "-c", "0", "/usr/sbin/nginx", "-p", tmp,
                          "-c", conf, "-g", "daemon off;"])
    time.sleep(0.5)
    return p


def stop(p):
    p.terminate()
    try:
        p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def run(cmd, secs):
    out = subprocess.run(["taskset", "-c", "1"] + cmd, capture_output=True,
                         text=True, timeout=secs + 60)
    if out.returncode != 0:
        sys.exit(f"{cmd[0]} failed: {out.stderr}")
    return out.stdout


def main(argv):
    build = argv[1] if len(argv) > 1 else "build"
    quick = "--quick" in argv
    secs = 2 if quick else 5
    bindir = os.path.join(os.path.abspath(build), "bench", "http_client")
    port = 8500 + os.getpid() % 1000
    url = f"http://127.0.0.1:{port}/1k.txt"
    rps = {}
    tmp = tempfile.mkdtemp(prefix="corio-bench-http-client-")
    srv = nginx(tmp, port)
    try:
        log(f"  corio client, {CONNS} connections, {secs} s")
        f = fields(run([os.path.join(bindir, "corio_get"), url, str(CONNS),
                        str(secs)], secs))
        rps["corio"] = f["requests"] / f["seconds"]
        log(f"  aiohttp client, {CONNS} connections, {secs} s")
        f = fields(run([PY, PEERS, "get", url, str(CONNS), str(secs)], secs))
        rps["aiohttp"] = f["requests"] / f["seconds"]
        if shutil.which("wrk"):
            log(f"  wrk, {CONNS} connections, {secs} s")
            out = run(["wrk", "-t1", f"-c{CONNS}", f"-d{secs}s", url], secs)
            for line in out.splitlines():
                if line.startswith("Requests/sec:"):
                    rps["wrk"] = float(line.split()[1])
    finally:
        stop(srv)
        shutil.rmtree(tmp, ignore_errors=True)

    ws = {}
    servers = [("corio", [os.path.join(bindir, "corio_ws_echo"), "server"],
                [os.path.join(bindir, "corio_ws_echo"), "client"]),
               ("aiohttp", [PY, PEERS, "ws-server"], [PY, PEERS, "ws-client"])]
    for name, scmd, ccmd in servers:
        port += 1
        log(f"  {name} WebSocket echo, {WS_CONNS} connections, {WS_SIZE} B, {secs} s")
        p = subprocess.Popen(["taskset", "-c", "0"] + scmd + [str(port)],
                             stdout=subprocess.PIPE, text=True)
        try:
            if p.stdout.readline().strip() != "READY":
                sys.exit(f"{name} WebSocket server did not start")
            f = fields(run(ccmd + [f"ws://127.0.0.1:{port}/", str(WS_CONNS),
                                   str(secs), str(WS_SIZE)], secs))
            ws[name] = f["messages"] / f["seconds"]
        finally:
            stop(p)

    out = []
    P = out.append
    P(f"corio HTTP client benchmark, {time.strftime('%Y-%m-%d %H:%M')}")
    P(f"  machine: {machine()}; servers on CPU 0, clients on CPU 1")
    P(f"  GET of a 1 KiB file from nginx (1 worker), {CONNS} keep-alive "
      f"connections, {secs} s; (Nx) = corio / peer")
    for n, v in rps.items():
        P(f"    {n:<10}{v:>14,.0f} req/s  ({rps['corio'] / v:.2f}x)")
    P(f"  WebSocket echo, {WS_CONNS} connections, {WS_SIZE} B messages, "
      "client and server of the same kind")
    for n, v in ws.items():
        P(f"    {n:<10}{v:>14,.0f} msg/s  ({ws['corio'] / v:.2f}x)")
    P("targets")
    for peer, want in TARGETS.items():
        if peer in rps:
            got = rps["corio"] / rps[peer]
            P(f"    client: corio >= {want:.1f}x {peer:<8} {got:.2f}x  "
              f"{'PASS' if got >= want else 'MISS'}")
    text = "\n".join(out)
    print(text)
    with open(os.path.join(bindir, "results.txt"), "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main(sys.argv)
