"""What the tests read about processes from /proc (Linux).

- `child_pids(parent)`: the pids whose parent is `parent`.
- `cpu_ticks(pid)`: utime + stime of a process, in clock ticks.
- `effective_uid(pid)`: the effective uid of a process.
Fails: OSError for a process that has gone (child_pids skips those).
Thread safety: reads only.
"""

from __future__ import annotations

from pathlib import Path


def _stat_fields(pid: int | str) -> list[str]:
    # After "(command name)": state, ppid, ... (proc(5)); the name may hold spaces.
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def child_pids(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if int(_stat_fields(entry.name)[1]) == parent:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def cpu_ticks(pid: int) -> int:
    fields = _stat_fields(pid)
    return int(fields[11]) + int(fields[12])


def effective_uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[2])
    raise OSError(f"no Uid line for pid {pid}")
