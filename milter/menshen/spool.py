"""A bounded spool for one message as it arrives from the MTA.

In:  header and body bytes in arrival order (`write`), then one `read` at end of message.
Out: the message bytes exactly as written. Memory holds up to `memory_bytes`; beyond that
     the message moves to an unlinked temporary file. At most `cap_bytes` are kept (the
     engine looks at no more than that); `size` still counts every byte received, and
     `truncated` tells that the cap was hit, so the extractor reports the limit.
Fails: OSError when the spool directory is unwritable or full; the adapter answers 4xx.
Thread safety: one Spool per message, used by one connection thread only.
"""

from __future__ import annotations

import tempfile
from pathlib import Path


class Spool:
    def __init__(self, memory_bytes: int, cap_bytes: int, directory: Path | None = None) -> None:
        # SpooledTemporaryFile rolls over to a real (already unlinked) file past max_size,
        # so a crash never leaves message content behind on disk.
        # Not a context manager: the spool lives across libmilter callbacks; close() ends it.
        self._file = tempfile.SpooledTemporaryFile(  # noqa: SIM115
            max_size=memory_bytes, dir=str(directory) if directory else None
        )
        self._cap = cap_bytes
        self._kept = 0
        self.size = 0

    @property
    def truncated(self) -> bool:
        return self.size > self._kept

    def write(self, data: bytes) -> None:
        self.size += len(data)
        room = self._cap - self._kept
        if room <= 0:
            return
        if len(data) > room:
            data = data[:room]
        self._file.write(data)
        self._kept += len(data)

    def read(self) -> bytes:
        self._file.seek(0)
        return self._file.read()

    def close(self) -> None:
        self._file.close()
