"""bench/net/peers.py -- the Python echo servers of the benchmark, run by
Debian's /usr/bin/python3 (python3-uvloop):

  peers.py asyncio-streams PORT   asyncio, StreamReader/StreamWriter
  peers.py uvloop-streams PORT    uvloop's loop, the same streams code
  peers.py uvloop-protocol PORT   uvloop's loop, a Protocol (data_received
                                  writes back: no coroutine per message)

Each prints READY when listening and runs until killed."""
import asyncio
import resource
import sys


async def handle(reader, writer):
    try:
        while True:
            data = await reader.read(16384)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    writer.close()


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def main(kind, port):
    loop = asyncio.get_running_loop()
    if kind.endswith("protocol"):
        server = await loop.create_server(Echo, "127.0.0.1", port,
                                          backlog=4096)
    else:
        server = await asyncio.start_server(handle, "127.0.0.1", port,
                                            backlog=4096)
    print("READY", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind.startswith("uvloop"):
        import uvloop
        uvloop.install()
    asyncio.run(main(kind, port))
