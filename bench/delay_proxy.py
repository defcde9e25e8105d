"""A TCP proxy on loopback that holds every chunk for a fixed delay each way: a stand-in for a network hop.

bench/api runs it as a child process, in front of PostgreSQL, to show what one round trip per symbol costs
once a round trip costs what it does across a network rather than the ~0.1 ms of loopback.

    .venv/bin/python -m bench.delay_proxy LISTEN_PORT TARGET_HOST TARGET_PORT DELAY_MS
"""

import asyncio
import sys
import time


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    # Chunks are stamped on arrival and released in order once their delay has passed.
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def release() -> None:
        while True:
            due, chunk = await queue.get()
            if not chunk:
                writer.close()
                return
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(chunk)
            await writer.drain()

    releaser = asyncio.create_task(release())
    while True:
        chunk = await reader.read(65536)
        queue.put_nowait((time.perf_counter() + delay, chunk))
        if not chunk:
            break
    await releaser


async def main(listen_port: int, target_host: str, target_port: int, delay_ms: float) -> None:
    delay = delay_ms / 1000

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(target_host, target_port)
        await asyncio.gather(
            _pipe(client_reader, server_writer, delay),
            _pipe(server_reader, client_writer, delay),
            return_exceptions=True,
        )

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
