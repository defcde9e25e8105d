"""COPY TO STDOUT as a readable file, for readers (Arrow's CSV reader) that take one."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg.abc import Buffer

# What the buffered file reads from the COPY at a time.
BUFFER_BYTES = 1 << 20


def copy_file(copy: psycopg.Copy) -> io.BufferedReader:
    """The rows of a started COPY TO STDOUT as one buffered binary file."""
    return io.BufferedReader(_CopyStream(iter(copy)), buffer_size=BUFFER_BYTES)


class _CopyStream(io.RawIOBase):
    """A readable file over the chunks of a COPY (one per row)."""

    def __init__(self, chunks: Iterator[Buffer]) -> None:
        self._chunks = chunks
        # What the last read took from the COPY beyond what it returned.
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        # Rows gathered until they fill the buffer and joined at once: copying row by row into it costs a
        # slice per row, as much again as reading the rows from the COPY. Each row is copied out of libpq's
        # memory as it comes: holding a buffer's worth of libpq's rows until the join is slower still.
        target = memoryview(buffer).cast("B")
        parts = [self._pending]
        gathered = len(self._pending)
        while gathered < len(target):
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            parts.append(bytes(chunk))
            gathered += len(chunk)
        data = b"".join(parts)
        filled = min(len(target), len(data))
        target[:filled] = memoryview(data)[:filled]
        # What did not fit (part of the last row gathered) opens the next read.
        self._pending = data[filled:]
        return filled
