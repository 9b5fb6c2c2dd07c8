"""A spare forked from the template copies its writable memory ahead of its restart."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from devreload.worker import prefault

MAPS = """\
55d0c0a00000-55d0c0a2a000 r--p 00000000 08:01 123 /usr/bin/python3.11
55d0c0e00000-55d0c0e02000 rw-p 00400000 08:01 123 /usr/bin/python3.11
55d0c1000000-55d0c1800000 rw-p 00000000 00:00 0 [heap]
7f0000000000-7f0000a00000 rw-p 00000000 00:00 0
7f0000a00000-7f0000b00000 rw-s 00000000 00:05 77 /dev/shm/shared
7f0000b00000-7f0000b01000 ---p 00000000 00:00 0
7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0 [stack]
7ffc00100000-7ffc00104000 r--p 00000000 00:00 0 [vvar]
7ffc00104000-7ffc00106000 r-xp 00000000 00:00 0 [vdso]
"""


def test_only_private_writable_memory_is_copied(tmp_path: Path) -> None:
    maps = tmp_path / "maps"
    maps.write_text(MAPS)
    assert prefault.writable_ranges(str(maps)) == [
        (0x55D0C0E00000, 0x55D0C0E02000),
        (0x55D0C1000000, 0x55D0C1800000),
        (0x7F0000000000, 0x7F0000A00000),
    ]


def test_unreadable_maps_copy_nothing(tmp_path: Path) -> None:
    assert prefault.writable_ranges(str(tmp_path / "absent")) == []


def test_a_large_mapping_goes_in_chunks_that_cover_it_once() -> None:
    start, end = 0x1000_0000, 0x1000_0000 + 2 * prefault.CHUNK + 4096
    pieces = list(prefault.chunks([(start, end), (0x2000_0000, 0x2000_1000)]))
    assert pieces == [
        (start, start + prefault.CHUNK),
        (start + prefault.CHUNK, start + 2 * prefault.CHUNK),
        (start + 2 * prefault.CHUNK, end),
        (0x2000_0000, 0x2000_1000),
    ]


def _private_dirty_kb() -> int:
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith("Private_Dirty:"):
                return int(line.split()[1])
    raise AssertionError("no Private_Dirty in smaps_rollup")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="MADV_POPULATE_WRITE is Linux's")
def test_a_forked_process_makes_the_shared_memory_its_own() -> None:
    """In a real fork: the child's private memory grows by what it shared with its parent,
    and a process wanted at once copies nothing."""
    ballast = bytearray(64 << 20)  # written by the parent: shared with the child after fork
    ballast[::4096] = b"x" * len(ballast[::4096])
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            before = _private_dirty_kb()
            untouched = prefault.own_memory(lambda: True)
            copied = prefault.own_memory(lambda: False)
            grown = _private_dirty_kb() - before
            os.write(write_end, f"{untouched} {copied} {grown}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as answer:
        text = answer.read()
    os.waitpid(pid, 0)
    untouched, copied, grown = (int(n) for n in text.split())
    assert untouched == 0
    if copied == 0:
        pytest.skip("this kernel has no MADV_POPULATE_WRITE (Linux < 5.14)")
    assert copied >= len(ballast)
    assert grown * 1024 >= len(ballast)
    del ballast
