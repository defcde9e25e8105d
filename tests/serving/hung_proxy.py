"""A TCP proxy in front of PostgreSQL that can stop forwarding: a hung database server as the API sees it (a
stopped server process, or its host gone silent), without touching the shared server itself.

Paused, it still accepts connections (the kernel would) and reads what clients send, but forwards nothing
either way until resumed, or until `seconds` have passed, so that a test of code that waits forever ends.
`pause_new` hangs only the connections opened from then on: a hung postmaster, whose running backends still
answer.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit


class HungProxy:
    def __init__(self, target_url: str) -> None:
        self._target = urlsplit(target_url)
        self.loop = asyncio.new_event_loop()
        self._gates: set[asyncio.Event] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._hang_new = False
        self._server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        port = self._server.sockets[0].getsockname()[1]
        credentials = self._target.netloc.rpartition("@")[0]
        self.url = urlunsplit(self._target._replace(netloc=f"{credentials}@127.0.0.1:{port}"))

    def pause(self, *, seconds: float) -> None:
        """Hang every connection, open or new, for `seconds` at most."""
        self.loop.call_soon_threadsafe(self._hang, True, seconds)

    def pause_new(self, *, seconds: float) -> None:
        """Hang the connections opened from now on, for `seconds` at most."""
        self.loop.call_soon_threadsafe(self._hang, False, seconds)

    def resume(self) -> None:
        self.loop.call_soon_threadsafe(self._release)

    def _hang(self, all_connections: bool, seconds: float) -> None:
        self._hang_new = True
        if all_connections:
            for gate in self._gates:
                gate.clear()
        self.loop.call_later(seconds, self._release)

    def _release(self) -> None:
        self._hang_new = False
        for gate in self._gates:
            gate.set()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        gate = asyncio.Event()
        if not self._hang_new:
            gate.set()
        self._gates.add(gate)
        server_reader, server_writer = await asyncio.open_connection(
            self._target.hostname, self._target.port or 5432
        )
        self._writers |= {client_writer, server_writer}
        await asyncio.gather(
            self._pipe(client_reader, server_writer, gate), self._pipe(server_reader, client_writer, gate)
        )

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, gate: asyncio.Event
    ) -> None:
        try:
            while chunk := await reader.read(65536):
                await gate.wait()
                writer.write(chunk)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    def run(self) -> None:
        self.loop.run_forever()

    def close(self) -> None:
        async def close() -> None:
            self._server.close()
            for writer in self._writers:
                writer.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)


@contextmanager
def hung_proxy(target_url: str) -> Iterator[HungProxy]:
    """A proxy to the PostgreSQL of `target_url`, forwarding until paused; `.url` goes through it."""
    proxy = HungProxy(target_url)
    thread = threading.Thread(target=proxy.run, name="hung-proxy", daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.close()
        thread.join(timeout=10)
        proxy.loop.close()
