"""Runs in: hub, zygote, spoke.

Wire format: a 4-byte big-endian length, then that many bytes of UTF-8 JSON.

``FrameDecoder`` is a pure, incremental parser (bytes in, frames or errors out)
so it can be fuzzed without sockets. A frame whose declared length exceeds the
limit is never buffered: its bytes are counted off and dropped as they arrive,
then reported once as ``FrameTooLarge``, which keeps the stream in sync.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

HEADER = struct.Struct(">I")
DEFAULT_MAX_FRAME = 1024 * 1024


class FrameTooLarge(Exception):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"frame of {size} bytes exceeds the {limit}-byte limit")
        self.size = size
        self.limit = limit


def encode_frame(payload: bytes, max_frame: int = DEFAULT_MAX_FRAME) -> bytes:
    if len(payload) > max_frame:
        raise FrameTooLarge(len(payload), max_frame)
    return HEADER.pack(len(payload)) + payload


@dataclass
class FrameDecoder:
    max_frame: int = DEFAULT_MAX_FRAME

    def __post_init__(self) -> None:
        self._buf = bytearray()
        self._skip = 0          # bytes of an oversized frame still to drop
        self._skip_size = 0

    @property
    def mid_frame(self) -> bool:
        """True when a frame has started but not finished (EOF now means truncation)."""
        return bool(self._buf) or self._skip > 0

    def feed(self, data: bytes) -> list[bytes | FrameTooLarge]:
        out: list[bytes | FrameTooLarge] = []
        view = memoryview(data)
        while view:
            if self._skip:
                n = min(self._skip, len(view))
                self._skip -= n
                view = view[n:]
                if not self._skip:
                    out.append(FrameTooLarge(self._skip_size, self.max_frame))
                continue
            if len(self._buf) < HEADER.size:
                need = HEADER.size - len(self._buf)
                self._buf += view[:need]
                view = view[need:]
                if len(self._buf) < HEADER.size:
                    break
                (size,) = HEADER.unpack(self._buf)
                if size > self.max_frame:
                    self._buf.clear()
                    self._skip = self._skip_size = size
                    continue
                if size == 0:
                    self._buf.clear()
                    out.append(b"")
                continue
            size = HEADER.unpack_from(self._buf)[0]
            need = HEADER.size + size - len(self._buf)
            self._buf += view[:need]
            view = view[need:]
            if len(self._buf) == HEADER.size + size:
                out.append(bytes(self._buf[HEADER.size:]))
                self._buf.clear()
        return out
