"""A bounded spool for one message as it arrives from the MTA.

In:  header and body bytes in arrival order (`write`), then one `read` at end of message.
Out: the message bytes exactly as written. Memory holds up to `memory_bytes`; beyond that
     the message moves to an unlinked temporary file (0: straight to the file). At most
     `cap_bytes` are kept (the engine looks at no more than that); `size` still counts
     every byte received, and `truncated` tells that the cap was hit, so the extractor
     reports the limit.
Fails: OSError when the spool directory is unwritable or full; the adapter answers 4xx.
Thread safety: one Spool per message, used by one connection thread only.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import IO


class Spool:
    def __init__(self, memory_bytes: int, cap_bytes: int, directory: Path | None = None) -> None:
        # Memory first, in one growing buffer (most mail is small: no file is made for it);
        # past memory_bytes an unlinked temporary file, so a crash never leaves message
        # content behind on disk. 0 means straight to the file. Not a context manager: the
        # spool lives across libmilter callbacks; close() ends it.
        self._memory_bytes = memory_bytes
        self._directory = str(directory) if directory else None
        self._buffer = bytearray()
        self._file: IO[bytes] | None = None if memory_bytes > 0 else self._new_file()
        self._cap = cap_bytes
        self._kept = 0
        self.size = 0

    @property
    def truncated(self) -> bool:
        return self.size > self._kept

    @property
    def on_disk(self) -> bool:
        return self._file is not None

    def _new_file(self) -> IO[bytes]:
        return tempfile.TemporaryFile(dir=self._directory)

    def write(self, data: bytes) -> None:
        self.size += len(data)
        room = self._cap - self._kept
        if room <= 0:
            return
        if len(data) > room:
            data = data[:room]
        if self._file is None and self._kept + len(data) > self._memory_bytes:
            self._file = self._new_file()
            self._file.write(self._buffer)
            self._buffer = bytearray()
        if self._file is None:
            self._buffer += data
        else:
            self._file.write(data)
        self._kept += len(data)

    def read(self) -> bytes:
        if self._file is None:
            return bytes(self._buffer)
        self._file.seek(0)
        return self._file.read()

    def close(self) -> None:
        """Discard the message. Never raises: closing flushes the file's buffer, which on a
        full disk fails again; the bytes are being thrown away anyway."""
        self._buffer = bytearray()
        if self._file is None:
            return
        try:
            self._file.close()
        except OSError:
            with contextlib.suppress(OSError):
                self._file.close()
