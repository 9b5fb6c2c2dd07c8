"""watchman's binary protocol: what goes out comes back, templates, odd names."""

from __future__ import annotations

import os
import struct

import pytest

from devreload.filemon import bser


@pytest.mark.parametrize("value", [
    0, -1, 127, 128, -129, 40_000, 1 << 40, 2.5, True, False, None, "", "watch-project",
    ["subscribe", "/tmp/p", "devreload", {"fields": ["name", "exists"], "since": "c:1:2"}],
])
def test_a_value_comes_back_as_it_went(value: object) -> None:
    pdu = bser.encode(value)
    assert bser.pdu_size(pdu) == len(pdu)
    assert bser.decode(pdu) == value


def test_a_name_that_is_not_utf8_travels_unchanged() -> None:
    name = os.fsdecode(b"/tmp/caf\xe9.py")
    pdu = bser.encode({"files": [name]})
    assert b"caf\xe9.py" in pdu
    assert bser.decode(pdu) == {"files": [name]}


def _int8(n: int) -> bytes:
    return b"\x03" + struct.pack("=b", n)


def _string(text: bytes) -> bytes:
    return b"\x02" + _int8(len(text)) + text


def test_a_template_is_an_array_of_objects_and_skip_leaves_a_key_out() -> None:
    keys = b"\x00" + _int8(2) + _string(b"name") + _string(b"exists")
    rows = _string(b"a.py") + b"\x08" + _string(b"b\xff.py") + b"\x0c"
    body = b"\x0b" + keys + _int8(2) + rows
    pdu = bser.MAGIC + _int8(len(body)) + body
    assert bser.decode(pdu) == [{"name": "a.py", "exists": True},
                                {"name": os.fsdecode(b"b\xff.py")}]


def test_a_partial_pdu_waits_for_more_and_garbage_is_refused() -> None:
    pdu = bser.encode({"version": "4.9.0"})
    assert bser.pdu_size(pdu[:2]) is None
    with pytest.raises(bser.BserError):
        bser.decode(pdu[:-1])
    with pytest.raises(bser.BserError):
        bser.pdu_size(b'{"version": "4.9.0"}\n')
