#!/usr/bin/env python3
# tests/helpers/http_peer.py -- an aiohttp server for the HTTP client's
# tests (tests/test_http_client.c). It listens on 127.0.0.1, port 0 (or
# the TLS one: --cert CERT --key KEY), prints "PORT <n>" on stdout, and
# exits when its stdin closes (the test's end), so that it never outlives
# the test.
import asyncio
import gzip
import ssl
import sys
import zlib

from aiohttp import web


async def hello(req):
    return web.Response(text="hello")


async def echo(req):
    body = await req.read()
    lines = [f"{req.method} {req.path_qs}"]
    for name in ("Content-Length", "Content-Type", "X-Test", "Authorization",
                 "Cookie", "Accept-Encoding", "User-Agent"):
        if name in req.headers:
            lines.append(f"{name}: {req.headers[name]}")
    return web.Response(body="\n".join(lines).encode() + b"\n\n" + body)


async def redirect(req):
    code = int(req.match_info["code"])
    n = int(req.query.get("n", "1"))
    loc = f"/redirect/{code}?n={n - 1}" if n > 1 else req.query.get("to", "/echo")
    return web.Response(status=code, headers={"Location": loc}, text="moved")


DATA = b"".join(b"line %d of the compressed body\n" % i for i in range(2000))


async def gz(req):
    return web.Response(body=gzip.compress(DATA),
                        headers={"Content-Encoding": "gzip"})


async def deflate(req):
    return web.Response(body=zlib.compress(DATA),
                        headers={"Content-Encoding": "deflate"})


async def rawdeflate(req):
    c = zlib.compressobj(wbits=-15)
    return web.Response(body=c.compress(DATA) + c.flush(),
                        headers={"Content-Encoding": "deflate"})


async def chunked(req):
    resp = web.StreamResponse()
    resp.enable_chunked_encoding()
    await resp.prepare(req)
    for i in range(10):
        await resp.write(b"chunk %d\n" % i)
        await asyncio.sleep(0.005)
    await resp.write_eof()
    return resp


async def big(req):
    n = int(req.query["n"])
    resp = web.StreamResponse()
    resp.enable_chunked_encoding()
    await resp.prepare(req)
    block = b"x" * 65536
    while n > 0:
        await resp.write(block[:min(n, len(block))])
        n -= len(block)
    await resp.write_eof()
    return resp


async def slow(req):
    await asyncio.sleep(float(req.query.get("s", "1")))
    return web.Response(text="slow")


async def setcookie(req):
    r = web.Response(text="set")
    r.set_cookie("session", "abc", path="/")
    r.set_cookie("scoped", "yes", path="/cookie")
    return r


async def delcookie(req):
    r = web.Response(text="deleted")
    r.del_cookie("session", path="/")
    return r


async def showcookie(req):
    return web.Response(text="; ".join(f"{k}={v}" for k, v in
                                       sorted(req.cookies.items())))


async def peer(req):
    return web.Response(text=str(req.transport.get_extra_info("peername")[1]))


async def main():
    app = web.Application()
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/hello", hello)
    app.router.add_route("*", "/redirect/{code}", redirect)
    app.router.add_get("/gzip", gz)
    app.router.add_get("/deflate", deflate)
    app.router.add_get("/rawdeflate", rawdeflate)
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/big", big)
    app.router.add_get("/slow", slow)
    app.router.add_get("/cookie/set", setcookie)
    app.router.add_get("/cookie/del", delcookie)
    app.router.add_get("/cookie/show", showcookie)
    app.router.add_get("/show", showcookie)
    app.router.add_get("/peer", peer)
    ctx = None
    if "--cert" in sys.argv:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(sys.argv[sys.argv.index("--cert") + 1],
                            sys.argv[sys.argv.index("--key") + 1])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    await runner.cleanup()


asyncio.run(main())
