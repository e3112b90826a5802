"""Append-only files of framed binary records, readable after a crash.

A record is a JSON header and an opaque payload (a task's serialized inputs, a
result's value). Each goes to the file as one frame, `magic, length, crc32, body`,
in one `write` followed by a flush to the operating system, so a client killed at
any instant leaves every record it had written whole and at most one torn frame
at the end. Reading stops at the first frame that is short or fails its checksum;
opening for append cuts such a tail off first, so that later records stay readable.
"""

from __future__ import annotations

import json
import os
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from typing import BinaryIO

from colmena_fx.exceptions import RunDirectoryError

_MAGIC = b"CFXR"
#: magic, body length, crc32 of the body; then the body: header length, header, payload.
_FRAME = struct.Struct("<4sII")
_HEADER_LENGTH = struct.Struct("<I")


def encode(header: dict[str, Any] | bytes, payload: bytes = b"") -> bytes:
    """One whole frame; `header` may come encoded as JSON already."""
    if isinstance(header, bytes):
        head = header
    else:
        head = json.dumps(header, separators=(",", ":")).encode()
    body = b"".join((_HEADER_LENGTH.pack(len(head)), head, payload))
    return _FRAME.pack(_MAGIC, len(body), zlib.crc32(body)) + body


def _frames(stream: BinaryIO) -> Iterator[tuple[int, dict[str, Any], bytes]]:
    """(end offset, header, payload) of each whole frame, up to the first bad one.

    Read frame by frame: a long campaign's file of inputs may not fit in memory.
    """
    offset = 0
    while True:
        head = stream.read(_FRAME.size)
        if len(head) < _FRAME.size:
            return
        magic, length, crc = _FRAME.unpack(head)
        if magic != _MAGIC:
            return
        body = stream.read(length)
        if len(body) < length or zlib.crc32(body) != crc:
            return
        (head_length,) = _HEADER_LENGTH.unpack_from(body)
        head_end = _HEADER_LENGTH.size + head_length
        header = json.loads(body[_HEADER_LENGTH.size : head_end])
        offset += _FRAME.size + length
        yield offset, header, body[head_end:]


def read_records(path: Path) -> Iterator[tuple[dict[str, Any], bytes]]:
    """Every whole record of `path`, oldest first; none if it does not exist."""
    try:
        stream = open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        return
    with stream:
        for _end, header, payload in _frames(stream):
            yield header, payload


def _whole_length(path: Path) -> int:
    """Bytes of `path` up to the end of its last whole frame."""
    try:
        with open(path, "rb") as stream:
            return max((end for end, _header, _payload in _frames(stream)), default=0)
    except FileNotFoundError:
        return 0


class RecordFile:
    """One record file, appended to from any thread."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stream: BinaryIO | None = None
        self._unsynced = False
        #: Why writing stopped (a full disk, say); raised again by every `append`.
        self.error: RunDirectoryError | None = None

    def open(self) -> None:
        """Open for appending, after cutting off a torn last frame."""
        whole = _whole_length(self.path)
        try:
            stream = open(self.path, "ab")  # noqa: SIM115
            if stream.tell() != whole:
                stream.truncate(whole)
                stream.seek(whole)
        except OSError as exc:
            raise self._refused(exc) from None
        with self._lock:
            self._stream = stream

    def append(self, header: dict[str, Any] | bytes, payload: bytes = b"") -> None:
        """Write one record and flush it to the OS; raises `RunDirectoryError`."""
        frame = encode(header, payload)
        with self._lock:
            if self.error is not None:
                raise self.error
            if self._stream is None:
                raise RunDirectoryError(f"{self.path} is not open")
            try:
                self._stream.write(frame)
                self._stream.flush()
            except OSError as exc:
                self.error = self._refused(exc)
                raise self.error from None
            self._unsynced = True

    def sync(self) -> None:
        """Make what was appended survive a power loss (fsync), if anything was."""
        with self._lock:
            if self._stream is None or not self._unsynced or self.error is not None:
                return
            self._unsynced = False
            fd = self._stream.fileno()
        try:
            os.fsync(fd)
        except OSError as exc:
            with self._lock:
                self.error = self._refused(exc)

    def close(self) -> None:
        self.sync()
        with self._lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.close()
            except OSError as exc:
                self.error = self.error or self._refused(exc)

    def _refused(self, exc: OSError) -> RunDirectoryError:
        return RunDirectoryError(
            f"cannot write {self.path}: {exc.strerror or exc}; without it the run "
            f"cannot be resumed: free space on that disk or choose another 'run_dir'"
        )
