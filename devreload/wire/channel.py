"""The private line between the monitor and one worker.

A socket pair, never a network port (AF_UNIX; on Windows a loopback pair made by the
standard library): messages (:mod:`devreload.wire.messages`) are pickled with a length
prefix, and file descriptors can travel with them where the platform passes them. EOF on
either side means the other process is gone, which is how a worker notices that its
monitor died, even by SIGKILL.
"""

from __future__ import annotations

import os
import pickle
import select
import socket
import struct
import sys
import threading
from collections.abc import Sequence

from devreload import platforms
from devreload.wire.messages import Connections, Message

HEADER = struct.Struct("!I")
MAX_FDS = 64

#: A connection handed between processes: its socket, and the bytes read from it but not
#: yet parsed (see :class:`~devreload.messages.Connections`).
HandedConnection = tuple[socket.socket, bytes]


class ChannelClosed(EOFError):
    """The process at the other end has gone away."""


class Channel:
    """Thread-safe for senders; one thread should receive. ``peer``: the pid at the other
    end, where a socket is shared by pid (Windows)."""

    def __init__(self, sock: socket.socket, peer: int = 0) -> None:
        self.sock = sock
        self.peer = peer
        self._send_lock = threading.Lock()

    @classmethod
    def pair(cls) -> tuple[Channel, socket.socket]:
        """The monitor's end, and the raw socket to hand to the new process."""
        ours, theirs = socket.socketpair()
        return cls(ours), theirs

    @classmethod
    def from_fd(cls, fd: int) -> Channel:
        """The end a process was started with: its peer is its parent."""
        return cls(socket.socket(fileno=fd), peer=os.getppid())

    def fileno(self) -> int:
        return self.sock.fileno()

    def readable(self) -> bool:
        """Whether a message (or the other end's close) waits to be read, without waiting."""
        return bool(select.select([self.sock], [], [], 0)[0])

    def send(self, message: Message, fds: list[int] | None = None) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        with self._send_lock:
            try:
                if fds:
                    if sys.platform == "win32":
                        raise OSError("descriptors do not travel on Windows")
                    socket.send_fds(self.sock, [HEADER.pack(len(data))], fds)
                    self.sock.sendall(data)
                else:
                    self.sock.sendall(HEADER.pack(len(data)) + data)
            except OSError as exc:
                raise ChannelClosed(str(exc)) from exc

    def recv(self) -> Message:
        message, _ = self.recv_with_fds()
        return message

    def recv_with_fds(self) -> tuple[Message, list[int]]:
        try:
            fds: list[int] = []
            if sys.platform == "win32":
                head = self.sock.recv(HEADER.size)
            else:
                head, fds, _, _ = socket.recv_fds(self.sock, HEADER.size, MAX_FDS)
            if not head:
                raise ChannelClosed("the other end closed the channel")
            head += self._read_exactly(HEADER.size - len(head))
            (size,) = HEADER.unpack(head)
            message: Message = pickle.loads(self._read_exactly(size))
        except OSError as exc:
            raise ChannelClosed(str(exc)) from exc
        return message, list(fds)

    def _read_exactly(self, size: int) -> bytes:
        chunks = []
        while size:
            chunk = self.sock.recv(min(size, 1 << 20))
            if not chunk:
                raise ChannelClosed("the other end closed the channel mid-message")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        self.sock.close()


def send_connections(channel: Channel, connections: Sequence[HandedConnection]) -> None:
    """Send connections to the other process, ``MAX_FDS`` to a message, and close them here:
    the kernel keeps each open while its fd (or its share) travels, so no client sees it
    close. On ChannelClosed every one not sent yet is closed too."""
    passes_fds = platforms.current().passes_fds
    try:
        for start in range(0, len(connections), MAX_FDS):
            batch = connections[start : start + MAX_FDS]
            data = tuple(data for _, data in batch)
            if passes_fds:
                channel.send(Connections(data), fds=[sock.fileno() for sock, _ in batch])
            else:
                shares = tuple(share(sock, channel.peer) for sock, _ in batch)
                channel.send(Connections(data, shares))
    finally:
        for sock, _ in connections:
            sock.close()


def received_connections(message: Connections, fds: Sequence[int]) -> list[HandedConnection]:
    """The sockets of ``message`` (its fds as received, or its shares), each with its
    bytes; an fd without bytes (a message cut short) is closed."""
    if message.shares:
        return [(from_share(shared), data) for shared, data in zip(message.shares, message.data,
                                                                   strict=False)]
    for fd in fds[len(message.data) :]:
        socket.socket(fileno=fd).close()
    return [(socket.socket(fileno=fd), data) for fd, data in zip(fds, message.data, strict=False)]


def share(sock: socket.socket, pid: int) -> bytes:
    """``sock`` as the process ``pid`` can take it (Windows's ``WSADuplicateSocket``)."""
    if sys.platform != "win32":
        raise OSError("socket.share is Windows's")
    return sock.share(pid)


def from_share(shared: bytes) -> socket.socket:
    if sys.platform != "win32":
        raise OSError("socket.fromshare is Windows's")
    return socket.fromshare(shared)
