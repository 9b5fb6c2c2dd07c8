"""A spare forked from the template makes its memory its own while it waits.

After a fork, parent and child share their memory until one writes to a page; the
kernel then copies it, one fault at a time. A worker importing an app writes all over the
interpreter's heap (every reference count, every object header the collector walks), so
a heavy app's start pays thousands of such faults: about a third more time than the same
imports in the template itself. A spare is forked well before it is needed, so it asks
the kernel to copy its writable memory at once (``MADV_POPULATE_WRITE``, Linux 5.14),
a few megabytes at a time, and stops the moment its restart comes: the faults are paid
while the developer is still typing. The cost is memory: the spare's copy is its own.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable, Iterator

MADV_POPULATE_WRITE = 23
#: Copied between two looks at whether the restart has come (about a millisecond).
CHUNK = 4 << 20
EINVAL = 22


def own_memory(wanted: Callable[[], bool], maps: str = "/proc/self/maps") -> int:
    """Copy this process's private writable memory now, until ``wanted()`` says the
    process is needed; the bytes copied. Nothing where the kernel cannot (not Linux, a
    kernel before 5.14)."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        madvise = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return 0
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    copied = 0
    for start, end in chunks(writable_ranges(maps)):
        if wanted():
            break
        if madvise(start, end - start, MADV_POPULATE_WRITE) == 0:
            copied += end - start
        elif ctypes.get_errno() == EINVAL:
            break  # the kernel has no such advice: nothing more to try
    return copied


def writable_ranges(maps: str) -> list[tuple[int, int]]:
    """The private writable mappings listed in ``maps``, but the stack and the kernel's
    own (``[vvar]``, ``[vdso]``)."""
    ranges = []
    try:
        with open(maps) as f:
            lines = f.readlines()
    except OSError:
        return []
    for line in lines:
        fields = line.split()
        if len(fields) < 2 or not fields[1].startswith("rw") or fields[1][3:4] != "p":
            continue
        name = fields[5] if len(fields) > 5 else ""
        if name.startswith(("[stack", "[v")):
            continue
        start, _, end = fields[0].partition("-")
        ranges.append((int(start, 16), int(end, 16)))
    return ranges


def chunks(ranges: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    for start, end in ranges:
        while start < end:
            yield start, min(start + CHUNK, end)
            start += CHUNK
