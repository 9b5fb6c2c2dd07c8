"""watchman's binary protocol, BSER (version 1): what the monitor speaks to the server.

JSON cannot carry a file name that is not UTF-8 (Linux allows any bytes but ``/``):
watchman fails to encode such an answer and sends nothing, so a query waited out its
timeout and a subscription went silent. BSER strings are bytes. Here they become ``str``
the way Python names files (``os.fsdecode``: odd bytes kept as surrogates), and ``str``
goes out as ``os.fsencode`` makes it, so a name travels both ways unchanged.

Integers are in the machine's byte order, as watchman writes them.
"""

from __future__ import annotations

import os
import struct
from typing import Any

MAGIC = b"\x00\x01"
ARRAY, OBJECT, STRING, REAL_TAG, TRUE, FALSE, NULL, TEMPLATE, SKIP = (
    0x00, 0x01, 0x02, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C)
#: The integer tags, smallest first, with their shapes.
INTS = {0x03: struct.Struct("=b"), 0x04: struct.Struct("=h"), 0x05: struct.Struct("=i"),
        0x06: struct.Struct("=q")}
REAL = struct.Struct("=d")
CONSTANTS = {TRUE: True, FALSE: False, NULL: None}


class BserError(ValueError):
    """Bytes that are not a BSER PDU."""


def encode(value: Any) -> bytes:
    """One PDU: the magic, the length, the value."""
    body = bytearray()
    _put(body, value)
    head = bytearray(MAGIC)
    _put_int(head, len(body))
    return bytes(head + body)


def _put_int(out: bytearray, number: int) -> None:
    for tag, shape in INTS.items():
        limit = 1 << (shape.size * 8 - 1)
        if -limit <= number < limit:
            out.append(tag)
            out += shape.pack(number)
            return
    raise BserError(f"{number} does not fit in 64 bits")


def _put(out: bytearray, value: Any) -> None:
    if value is True:
        out.append(TRUE)
    elif value is False:
        out.append(FALSE)
    elif value is None:
        out.append(NULL)
    elif isinstance(value, int):
        _put_int(out, value)
    elif isinstance(value, float):
        out.append(REAL_TAG)
        out += REAL.pack(value)
    elif isinstance(value, (str, bytes)):
        data = os.fsencode(value)
        out.append(STRING)
        _put_int(out, len(data))
        out += data
    elif isinstance(value, (list, tuple)):
        out.append(ARRAY)
        _put_int(out, len(value))
        for item in value:
            _put(out, item)
    elif isinstance(value, dict):
        out.append(OBJECT)
        _put_int(out, len(value))
        for key, item in value.items():
            _put(out, key)
            _put(out, item)
    else:
        raise BserError(f"cannot encode {type(value).__name__}")


def pdu_size(data: bytes | bytearray) -> int | None:
    """The size of the PDU ``data`` starts with, once its header is complete; else None."""
    if len(data) < 3:
        return None
    if data[:2] != MAGIC:
        raise BserError(f"not a BSER PDU (it starts with {bytes(data[:2])!r})")
    shape = INTS.get(data[2])
    if shape is None:
        raise BserError(f"bad length tag {data[2]:#x}")
    if len(data) < 3 + shape.size:
        return None
    return 3 + shape.size + int(shape.unpack_from(data, 3)[0])


def decode(pdu: bytes | bytearray) -> Any:
    """The value of one whole PDU (``pdu_size`` bytes)."""
    view = memoryview(pdu)
    _, start = _int(view, 2)
    try:
        value, end = _get(view, start)
    except (IndexError, struct.error) as exc:
        raise BserError("a truncated PDU") from exc
    if end != len(view):
        raise BserError(f"{len(view) - end} bytes after the value")
    return value


def _int(view: memoryview, at: int) -> tuple[int, int]:
    shape = INTS.get(view[at])
    if shape is None:
        raise BserError(f"an integer expected, not tag {view[at]:#x}")
    return int(shape.unpack_from(view, at + 1)[0]), at + 1 + shape.size


def _get(view: memoryview, at: int) -> tuple[Any, int]:
    tag = view[at]
    if tag in INTS:
        return _int(view, at)
    if tag == STRING:
        size, at = _int(view, at + 1)
        return os.fsdecode(bytes(view[at : at + size])), at + size
    if tag == ARRAY:
        count, at = _int(view, at + 1)
        items = []
        for _ in range(count):
            item, at = _get(view, at)
            items.append(item)
        return items, at
    if tag == OBJECT:
        count, at = _int(view, at + 1)
        obj = {}
        for _ in range(count):
            key, at = _get(view, at)
            obj[key], at = _get(view, at)
        return obj, at
    if tag == TEMPLATE:
        return _template(view, at + 1)
    if tag == REAL_TAG:
        return REAL.unpack_from(view, at + 1)[0], at + 1 + REAL.size
    if tag in CONSTANTS:
        return CONSTANTS[tag], at + 1
    raise BserError(f"unknown tag {tag:#x}")


def _template(view: memoryview, at: int) -> tuple[list[dict[str, Any]], int]:
    """An array of objects sharing their keys: the keys once, then each object's values
    in their order, SKIP for a key an object lacks."""
    keys, at = _get(view, at)
    count, at = _int(view, at)
    rows = []
    for _ in range(count):
        row = {}
        for key in keys:
            if view[at] == SKIP:
                at += 1
                continue
            row[key], at = _get(view, at)
        rows.append(row)
    return rows, at
