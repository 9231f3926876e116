"""bench/http/idle.py PORT N -- N keep-alive connections to the server,
each after one answered request (so the server has set it up for the
next one), then idle. Prints READY, holds them until stdin closes."""
import socket
import sys

port, n = int(sys.argv[1]), int(sys.argv[2])
req = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(req)
    got = b""
    while b"Hello, World!" not in got:
        chunk = s.recv(4096)
        if not chunk:
            sys.exit("closed")
        got += chunk
    socks.append(s)
print("READY", flush=True)
sys.stdin.read()
