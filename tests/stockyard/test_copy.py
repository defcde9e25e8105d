"""COPY TO STDOUT read as a file: exactly the COPY's bytes, whatever the buffer and read sizes."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from stockyard.db import copy as copy_module
from stockyard.db.copy import copy_file

# Rows of 1 to 300 bytes, so rows keep straddling the buffer's edges; 'é' makes some bytes multi-byte.
ROWS = """
    copy (select n, repeat('é', n %% 150) from generate_series(1, %(rows)s) as n)
    to stdout with (format csv, header)
"""


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url) as connection:
        yield connection


def copied(conn: psycopg.Connection, rows: int) -> bytes:
    with conn.cursor().copy(ROWS, {"rows": rows}) as copy:
        return b"".join(bytes(chunk) for chunk in copy)


@pytest.mark.parametrize("buffer_bytes", [1, 97, 4096])
@pytest.mark.parametrize("read_size", [-1, 1, 50, 1000, 10_000])
def test_the_file_holds_exactly_the_copy_across_buffer_boundaries(
    conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch, buffer_bytes: int, read_size: int
) -> None:
    monkeypatch.setattr(copy_module, "BUFFER_BYTES", buffer_bytes)
    expected = copied(conn, 500)
    with conn.cursor().copy(ROWS, {"rows": 500}) as copy:
        file = copy_file(copy)
        if read_size < 0:
            read = file.read()
        else:
            parts = []
            while part := file.read(read_size):
                assert len(part) <= read_size
                parts.append(part)
            read = b"".join(parts)
        assert file.read() == b""
    assert len(expected) > 10 * 4096
    assert read == expected


def test_an_empty_copy_reads_as_an_empty_file(conn: psycopg.Connection) -> None:
    with conn.cursor().copy("copy (select 1 where false) to stdout") as copy:
        assert copy_file(copy).read() == b""
