"""bench/http_client/peers.py -- the aiohttp side of scripts/bench-http-client.

    peers.py get URL CONNS SECONDS
        aiohttp's ClientSession (a TCPConnector with limit=CONNS, keep-alive):
        CONNS tasks GET URL in a loop, reading each body; prints
        "requests <n> seconds <s>".
    peers.py ws-server PORT
        an aiohttp WebSocket echo server; prints READY.
    peers.py ws-client URL CONNS SECONDS SIZE
        CONNS aiohttp WebSocket clients, each sending a SIZE-byte binary
        message and awaiting its echo in a loop; prints "messages <n>
        seconds <s>".
The event loop is asyncio's own (uvloop would be another peer)."""
import asyncio
import sys
import time


async def get(url, conns, secs):
    import aiohttp
    n = 0
    t0 = time.monotonic()
    until = t0 + secs

    async def worker(s):
        nonlocal n
        while time.monotonic() < until:
            async with s.get(url) as r:
                await r.read()
                if r.status == 200:
                    n += 1

    conn = aiohttp.TCPConnector(limit=conns, limit_per_host=conns)
    async with aiohttp.ClientSession(connector=conn) as s:
        await asyncio.gather(*(worker(s) for _ in range(conns)))
    print(f"requests {n} seconds {time.monotonic() - t0:.3f}", flush=True)


async def ws_server(port):
    from aiohttp import web

    async def echo(req):
        ws = web.WebSocketResponse()
        await ws.prepare(req)
        async for m in ws:
            if m.type == web.WSMsgType.BINARY:
                await ws.send_bytes(m.data)
            elif m.type == web.WSMsgType.TEXT:
                await ws.send_str(m.data)
        return ws

    app = web.Application()
    app.router.add_get("/", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("READY", flush=True)
    await asyncio.Event().wait()


async def ws_client(url, conns, secs, size):
    import aiohttp
    n = 0
    t0 = time.monotonic()
    until = t0 + secs
    data = b"\0" * size

    async def one(s):
        nonlocal n
        async with s.ws_connect(url) as ws:
            while time.monotonic() < until:
                await ws.send_bytes(data)
                await ws.receive()
                n += 1

    async with aiohttp.ClientSession() as s:
        await asyncio.gather(*(one(s) for _ in range(conns)))
    print(f"messages {n} seconds {time.monotonic() - t0:.3f}", flush=True)


if __name__ == "__main__":
    a = sys.argv
    if a[1] == "get":
        asyncio.run(get(a[2], int(a[3]), float(a[4])))
    elif a[1] == "ws-server":
        asyncio.run(ws_server(int(a[2])))
    elif a[1] == "ws-client":
        asyncio.run(ws_client(a[2], int(a[3]), float(a[4]), int(a[5])))
