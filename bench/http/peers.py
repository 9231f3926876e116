"""bench/http/peers.py KIND PORT -- the Python peers of scripts/bench-http:
aiohttp.web answering GET / with the 13 bytes "Hello, World!", on asyncio's
loop (KIND aiohttp) or uvloop's (aiohttp-uvloop). Prints READY once it
listens on 127.0.0.1:PORT."""
import asyncio
import sys

from aiohttp import web


async def hello(request):
    return web.Response(text="Hello, World!")


async def main(port):
    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("READY", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind == "aiohttp-uvloop":
        import uvloop
        uvloop.install()
    try:
        asyncio.run(main(port))
    except KeyboardInterrupt:
        pass
