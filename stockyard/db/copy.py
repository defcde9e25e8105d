"""COPY TO STDOUT as a readable file, for readers (Arrow's CSV reader) that take one."""

from __future__ import annotations

import io
from typing import Any

import psycopg

# What the buffered file reads from the COPY at a time.
BUFFER_BYTES = 1 << 20


def copy_file(copy: psycopg.Copy) -> io.BufferedReader:
    """The rows of a started COPY TO STDOUT as one buffered binary file."""
    return io.BufferedReader(_CopyStream(iter(copy)), buffer_size=BUFFER_BYTES)


class _CopyStream(io.RawIOBase):
    """A readable file over the chunks of a COPY (one per row)."""

    def __init__(self, chunks: Any) -> None:
        self._chunks = chunks
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        # Filled with as many rows as fit: a read per row would cost a call through the buffered reader each.
        target = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(target):
            if not self._pending:
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self._pending = memoryview(chunk).cast("B")
            size = min(len(target) - filled, len(self._pending))
            target[filled : filled + size] = self._pending[:size]
            self._pending = self._pending[size:]
            filled += size
        return filled
