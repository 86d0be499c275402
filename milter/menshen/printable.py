"""Sender-controlled text made safe for a log line or a terminal.

In:  any str (an envelope address, a header value, a queue listing's field).
Out: printable ASCII on one line: non-ASCII as backslash escapes, every control character
     (CR, LF, NUL, ESC, DEL, ...) as \\xNN, cut to `limit` characters. No log line can be
     forged or a terminal steered through a value that went through here (CWE-117).
Fails: never. Thread safety: a pure function.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def printable(text: str, limit: int = 256) -> str:
    escaped = text.encode("ascii", "backslashreplace").decode("ascii")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", escaped)[:limit]
