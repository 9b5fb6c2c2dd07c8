"""The private line between the monitor and one worker.

An AF_UNIX socket pair, never a network port: messages (:mod:`devreload.messages`) are
pickled with a length prefix, and file descriptors (listening sockets) can travel with
them. EOF on either side means the other process is gone, which is how a worker notices that its
monitor died, even by SIGKILL.
"""

from __future__ import annotations

import pickle
import socket
import struct
import threading

from devreload.messages import Message

HEADER = struct.Struct("!I")
MAX_FDS = 64


class ChannelClosed(EOFError):
    """The process at the other end has gone away."""


class Channel:
    """Thread-safe for senders; one thread should receive."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._send_lock = threading.Lock()

    @classmethod
    def pair(cls) -> tuple[Channel, socket.socket]:
        """The monitor's end, and the raw socket to hand to the new process."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        return cls(ours), theirs

    @classmethod
    def from_fd(cls, fd: int) -> Channel:
        return cls(socket.socket(fileno=fd))

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, message: Message, fds: list[int] | None = None) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        with self._send_lock:
            try:
                if fds:
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
