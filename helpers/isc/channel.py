"""Runs in: hub, zygote, spoke.

A typed, framed, blocking message channel over one connected Unix socket.

``recv`` never raises for what the peer sent: a bad frame comes back as a
``Violation`` (with the error code to answer), so a hostile peer cannot crash
the receiver. Only the end of the stream (or a deadline) ends a ``recv``.
"""

from __future__ import annotations

import array
import select
import socket
import time
from collections import deque
from dataclasses import dataclass

from helpers.isc.framing import DEFAULT_MAX_FRAME, FrameDecoder, FrameTooLarge, encode_frame
from helpers.isc.messages import ErrorCode, Message, MessageError, dump_message, parse_message

RECV_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Violation:
    """A frame the peer sent that is not a valid message."""

    code: ErrorCode
    detail: str


class ChannelClosed(Exception):
    def __init__(self, truncated: bool) -> None:
        super().__init__("peer closed the channel" + (" in the middle of a frame" if truncated else ""))
        self.truncated = truncated


class ChannelTimeout(Exception):
    pass


class Channel:
    def __init__(self, sock: socket.socket, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.sock = sock
        self.max_frame = max_frame
        self._decoder = FrameDecoder(max_frame)
        self._pending: deque[bytes | FrameTooLarge] = deque()
        self.closed = False

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, message: Message) -> None:
        self.sock.sendall(encode_frame(dump_message(message), self.max_frame))

    def send_raw(self, data: bytes) -> None:
        """Bytes as they are, framed or not. For tests and the escape battery."""
        self.sock.sendall(data)

    def send_fds(self, message: Message, fds: list[int]) -> None:
        frame = encode_frame(dump_message(message), self.max_frame)
        self.sock.sendmsg([frame], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])

    def recv(self, deadline: float | None = None) -> Message | Violation:
        """Next message or violation. Raises ChannelClosed at EOF, ChannelTimeout past ``deadline``
        (a ``time.monotonic()`` value)."""
        while not self._pending:
            self._fill(deadline)
        return self._interpret(self._pending.popleft())

    def has_buffered(self) -> bool:
        return bool(self._pending)

    def _fill(self, deadline: float | None) -> None:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.sock], [], [], remaining)[0]:
                raise ChannelTimeout()
        try:
            data = self.sock.recv(RECV_CHUNK)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.closed = True
            raise ChannelClosed(truncated=self._decoder.mid_frame)
        self._pending.extend(self._decoder.feed(data))

    @staticmethod
    def _interpret(item: bytes | FrameTooLarge) -> Message | Violation:
        if isinstance(item, FrameTooLarge):
            return Violation("frame_too_large", str(item))
        try:
            return parse_message(item)
        except MessageError as exc:
            return Violation(exc.code, str(exc))

    def close(self) -> None:
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass
