#!/usr/bin/env python3
# tests/helpers/ws_peer.py -- WebSocket peers for tests/test_http_ws.c, with
# python3-websockets and aiohttp.
#
#   ws_peer.py server websockets|aiohttp
#       an echo server on 127.0.0.1, port 0; prints "PORT <n>", exits when
#       stdin closes. Messages with a meaning: "ping-me" (the server pings
#       and answers "pong ok" once the pong came), "close-me" (closes with
#       4001 "bye"), "fragment-me" (answers "fragmented" in three
#       fragments; websockets only), "big <n>" (answers n bytes of 'b').
#   ws_peer.py client websockets|aiohttp URL
#       talks to an echo server at URL: text, binary, a fragmented text
#       (websockets only), a ping; prints what failed and exits 1, or
#       prints "client ok" and exits 0 after a clean close.
import asyncio
import sys


async def ws_server(lib):
    if lib == "websockets":
        import websockets

        async def handler(ws):
            try:
                await echo(ws)
            except websockets.ConnectionClosed:
                pass  # 4001 from close-me counts as an error there

        async def echo(ws):
            async for m in ws:
                if m == "ping-me":
                    await (await ws.ping(b"x"))
                    await ws.send("pong ok")
                elif m == "close-me":
                    await ws.close(4001, "bye")
                elif m == "fragment-me":
                    await ws.send(["frag", "ment", "ed"])
                elif isinstance(m, str) and m.startswith("big "):
                    await ws.send("b" * int(m[4:]))
                else:
                    await ws.send(m)

        srv = await websockets.serve(handler, "127.0.0.1", 0,
                                     max_size=16 * 1024 * 1024)
        port = srv.sockets[0].getsockname()[1]
    else:
        from aiohttp import web, WSMsgType

        async def handler(req):
            ws = web.WebSocketResponse(max_msg_size=16 * 1024 * 1024)
            await ws.prepare(req)
            async for m in ws:
                if m.type == WSMsgType.TEXT and m.data == "ping-me":
                    await ws.ping(b"x")
                    await ws.send_str("pong ok")
                elif m.type == WSMsgType.TEXT and m.data == "close-me":
                    await ws.close(code=4001, message=b"bye")
                elif m.type == WSMsgType.TEXT and m.data.startswith("big "):
                    await ws.send_str("b" * int(m.data[4:]))
                elif m.type == WSMsgType.TEXT:
                    await ws.send_str(m.data)
                elif m.type == WSMsgType.BINARY:
                    await ws.send_bytes(m.data)
            return ws

        app = web.Application()
        app.router.add_get("/", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


def check(what, got, want):
    if got != want:
        print(f"{what}: got {got!r}, want {want!r}", flush=True)
        sys.exit(1)


async def ws_client(lib, url):
    if lib == "websockets":
        import websockets
        async with websockets.connect(url, max_size=16 * 1024 * 1024) as ws:
            await ws.send("hello")
            check("text", await ws.recv(), "hello")
            await ws.send(b"\x00\x01\xff")
            check("binary", await ws.recv(), b"\x00\x01\xff")
            await ws.send(["frag", "ment", "ed"])
            check("fragmented", await ws.recv(), "fragmented")
            await ws.send("é" * 100000)
            check("big", await ws.recv(), "é" * 100000)
            await asyncio.wait_for(await ws.ping(b"p"), 5)
        check("close code", ws.close_code, 1000)
    else:
        import aiohttp
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(url, autoping=True) as ws:
                await ws.send_str("hello")
                check("text", (await ws.receive()).data, "hello")
                await ws.send_bytes(b"\x00\x01\xff")
                check("binary", (await ws.receive()).data, b"\x00\x01\xff")
                await ws.send_str("é" * 100000)
                check("big", (await ws.receive()).data, "é" * 100000)
                await ws.close()
    print("client ok", flush=True)


if sys.argv[1] == "server":
    asyncio.run(ws_server(sys.argv[2]))
else:
    asyncio.run(ws_client(sys.argv[2], sys.argv[3]))
