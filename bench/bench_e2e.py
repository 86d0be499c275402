"""End-to-end throughput: smtp-source -> private Postfix (± `menshen serve`) -> smtp-sink.

In:  `run(quick=False)`; standalone: `python bench/bench_e2e.py [--quick]` (as root, with
     Postfix installed: `make deps`). Three private Postfix instances run side by side on
     loopback (tests/rig/postfix_rig.py): "bare" (no milter), "null" (bench/null_milter.py,
     a pymilter milter declared like menshen's adapter that accepts without looking: the
     floor of any pymilter milter) and "menshen" (smtpd_milters = the unix socket of
     `menshen serve` with the default configuration, i.e. the shipped wordlists, keyword
     and attachment checks and workers on every core, plus three sending quotas on the
     embedded SQLite store). smtp-source sends one fixed, realistic 20 KB mixed
     Chinese/English message (UTF-8, base64; checked to be accepted by the engine) in 20
     parallel sessions, one message per session. Runs alternate A B A B ... after one
     untimed warm-up run each; figures are medians over the repetitions.
Out: a JSON-able dict: bare_msgs_s, null_milter_msgs_s, menshen_msgs_s, ratio (menshen /
     bare), null_milter_ratio,
     milter_cpu_ms_per_msg, postfix_cpu_ms_per_msg_{bare,menshen}, the per-repetition lists,
     and the parameters. Throughput = messages counted by smtp-sink (`-c`) / wall time from
     the start of smtp-source to the last message at the sink. CPU comes from /proc
     utime+stime deltas: the milter process; Postfix's master, its live children and (via
     cutime/cstime) its exited children.
Fails: RigError when a tool is missing, a daemon does not start, or a run does not deliver
     every message within its deadline (with smtp-source's output and the log tails).
Thread safety: one benchmark at a time; it saturates the machine by design.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests" / "rig"))

from postfix_rig import (  # noqa: E402
    LOOPBACK,
    PostfixRig,
    RigError,
    child_pids,
    cpu_seconds,
    find_tool,
    menshen_executable,
    tail,
    unix_socket_accepts,
    wait_until,
)

from corpus import cjk_heavy_text  # noqa: E402

MESSAGE_BYTES = 20_000
SESSIONS = 20
SENDER = "alice@sender.test"
RECIPIENT = "bob@example.com"


def build_message(seed: int) -> bytes:
    """A ~20 KB text/plain message: ~70 % Chinese, ~30 % English words, UTF-8 base64, CRLF."""
    n_chars = 4000
    for _ in range(20):
        msg = EmailMessage()
        msg["From"] = f"Zhang Wei <{SENDER}>"
        msg["To"] = f"Bob <{RECIPIENT}>"
        msg["Subject"] = "季度报告 quarterly report"
        msg["Message-ID"] = f"<bench-e2e-{seed}@sender.test>"
        msg.set_content(cjk_heavy_text(n_chars, seed), charset="utf-8", cte="base64")
        raw = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
        if abs(len(raw) - MESSAGE_BYTES) < 200:
            return raw
        n_chars = max(100, int(n_chars * MESSAGE_BYTES / len(raw)))
    return raw


def accepted_message(workdir: Path) -> tuple[Path, int]:
    """Write a message the engine accepts (random text might form a listed term: re-seed).

    Returns the path of the file for `smtp-source -F` (LF line ends: smtp-source appends CRLF
    to every line itself) and the message's size.
    """
    for seed in range(1, 50):
        raw = build_message(seed)
        eml = workdir / "message.eml"
        eml.write_bytes(raw)
        check = subprocess.run(
            [menshen_executable(), "check", str(eml)],
            capture_output=True,
            check=False,
        )
        if check.returncode == 0:
            lf = workdir / "message.lf"
            lf.write_bytes(raw.replace(b"\r\n", b"\n"))
            return lf, len(raw)
    raise RigError("no seed gave a message the default engine accepts")


def quota_config(workdir: Path) -> str:
    """Three quota rules on the embedded SQLite store, limits never reached."""
    return f"""quotas:
  enabled: true
  timezone: Asia/Shanghai
  store: {{type: sqlite, path: {workdir}/quotas.sqlite3}}
  rules:
    - {{name: sender-month, key: account, limit: 100000000, per: month}}
    - {{name: sender-minute, key: account, count: recipients, limit: 100000000, per: minute}}
    - {{name: client-hour, key: client_ip, limit: 100000000, per: hour}}
"""


class Milter:
    """A milter process on a unix socket: `menshen serve` (default config) or the null one."""

    def __init__(self, workdir: Path, socket: Path, null: bool = False) -> None:
        self.socket = socket
        self.null = null
        name = "null" if null else "menshen"
        self.config = workdir / "menshen.yml"
        # Shipped defaults (wordlists included), plus sending quotas on the embedded store.
        self.config.write_text("mode: enforce\n" + quota_config(workdir))
        self.log_path = workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        if self.null:
            return [sys.executable, str(HERE / "null_milter.py"), f"unix:{self.socket}"]
        return [
            menshen_executable(),
            "serve",
            "-c",
            str(self.config),
            "--socket",
            f"unix:{self.socket}",
        ]

    def start(self, timeout: float = 30.0) -> None:
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.argv(), stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )

        def listening() -> bool | None:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RigError(f"{self.argv()[1]} exited: {tail(self.log_path)}")
            if not self.null and "listening on" not in self.log_path.read_text():
                return None  # menshen logs this once the socket has its group and mode
            return True if unix_socket_accepts(self.socket) else None

        wait_until(listening, timeout, " ".join(self.argv()[:2]), lambda: tail(self.log_path))

    def cpu(self) -> float:
        """The milter's CPU: the process and, for pre-forked menshen, its live workers."""
        assert self.process is not None
        total = cpu_seconds(self.process.pid, with_children=True)
        for pid in child_pids(self.process.pid):
            with contextlib.suppress(OSError):
                total += cpu_seconds(pid)
        return total

    def accepted(self) -> int:
        return sum(" accept " in line for line in self.log_path.read_text().splitlines())

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def postfix_cpu(rig: PostfixRig) -> float:
    """CPU seconds of a Postfix instance so far: master, live children, reaped children."""
    master = rig.master_pid()
    if master is None:
        raise RigError(f"Postfix master is gone\n{tail(rig.maillog)}")
    total = cpu_seconds(master, with_children=True)
    for pid in child_pids(master):
        # A child that exits between listing and reading: its time moves to master's cutime.
        with contextlib.suppress(OSError):
            total += cpu_seconds(pid)
    return total


def one_run(
    rig: PostfixRig, message_file: Path, count: int, milter: Milter | None, deadline_s: float
) -> dict[str, float]:
    """Send `count` messages through `rig`; return throughput and CPU figures."""
    rig.wait_drained(timeout=60)
    before_sink = rig.sink.received
    before_pf = postfix_cpu(rig)
    before_milter = milter.cpu() if milter else 0.0
    argv = [
        find_tool("smtp-source"),
        "-s",
        str(SESSIONS),
        "-m",
        str(count),
        "-F",
        str(message_file),
        "-f",
        SENDER,
        "-t",
        RECIPIENT,
        "-M",
        "client.menshen.test",
        f"{LOOPBACK}:{rig.smtp_port}",
    ]
    start = time.monotonic()
    source = subprocess.run(argv, capture_output=True, timeout=deadline_s, check=False)
    if source.returncode != 0:
        raise RigError(
            f"smtp-source failed ({source.returncode}): {source.stderr.decode()[-2000:]}\n"
            f"{tail(rig.maillog)}"
        )
    wait_until(
        lambda: True if rig.sink.received - before_sink >= count else None,
        deadline_s,
        f"{count} messages at smtp-sink (have {rig.sink.received - before_sink})",
        lambda: tail(rig.maillog),
    )
    assert rig.sink.last_received_at is not None
    wall = rig.sink.last_received_at - start
    rig.wait_drained(timeout=60)
    pf = postfix_cpu(rig) - before_pf
    result = {
        "msgs_s": count / wall,
        "wall_s": wall,
        "postfix_cpu_ms_per_msg": pf * 1000 / count,
    }
    if milter is not None:
        result["milter_cpu_ms_per_msg"] = (milter.cpu() - before_milter) * 1000 / count
    return result


def run(quick: bool = False) -> dict[str, Any]:
    count = 300 if quick else 2500
    repetitions = 2 if quick else 3
    deadline_s = 120.0
    base = Path(tempfile.mkdtemp(prefix="menshen-bench-"))
    # smtpd and smtp-sink run as `postfix` and must traverse this tree (see postfix_rig).
    base.chmod(0o755)
    socket = base / "run" / "menshen.sock"
    null_socket = base / "run-null" / "null.sock"
    bare = PostfixRig(base / "bare", None, dump=False, count=True)
    guarded = PostfixRig(base / "menshen", socket, dump=False, count=True)
    nulled = PostfixRig(base / "null", null_socket, dump=False, count=True)
    milter = Milter(base, socket)
    null = Milter(base, null_socket, null=True)
    runs: dict[str, list[dict[str, float]]] = {"bare": [], "null": [], "menshen": []}
    load_at_start = os.getloadavg()
    try:
        message_file, size = accepted_message(base)
        milter.start()
        null.start()
        bare.start()
        guarded.start()
        nulled.start()
        warmup = max(SESSIONS * 5, count // 10)
        one_run(bare, message_file, warmup, None, deadline_s)
        one_run(nulled, message_file, warmup, null, deadline_s)
        one_run(guarded, message_file, warmup, milter, deadline_s)
        accepted_before = milter.accepted()
        for _ in range(repetitions):
            runs["bare"].append(one_run(bare, message_file, count, None, deadline_s))
            runs["null"].append(one_run(nulled, message_file, count, null, deadline_s))
            runs["menshen"].append(one_run(guarded, message_file, count, milter, deadline_s))
        accepted = milter.accepted() - accepted_before
        if accepted != count * repetitions:
            raise RigError(
                f"the milter accepted {accepted} messages, expected {count * repetitions}: "
                f"{tail(milter.log_path)}"
            )
    finally:
        nulled.stop()
        guarded.stop()
        bare.stop()
        null.stop()
        milter.stop()
        if not os.environ.get("MENSHEN_KEEP_RIG"):
            shutil.rmtree(base, ignore_errors=True)

    def median(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[kind])

    bare_msgs_s = median("bare", "msgs_s")
    menshen_msgs_s = median("menshen", "msgs_s")
    null_msgs_s = median("null", "msgs_s")
    return {
        "bare_msgs_s": round(bare_msgs_s, 1),
        "menshen_msgs_s": round(menshen_msgs_s, 1),
        "null_milter_msgs_s": round(null_msgs_s, 1),
        "ratio": round(menshen_msgs_s / bare_msgs_s, 3),
        "null_milter_ratio": round(null_msgs_s / bare_msgs_s, 3),
        "milter_cpu_ms_per_msg": round(median("menshen", "milter_cpu_ms_per_msg"), 3),
        "null_milter_cpu_ms_per_msg": round(median("null", "milter_cpu_ms_per_msg"), 3),
        "postfix_cpu_ms_per_msg_bare": round(median("bare", "postfix_cpu_ms_per_msg"), 3),
        "postfix_cpu_ms_per_msg_menshen": round(median("menshen", "postfix_cpu_ms_per_msg"), 3),
        "postfix_cpu_ms_per_msg_null": round(median("null", "postfix_cpu_ms_per_msg"), 3),
        "repetitions": {
            kind: [{k: round(v, 3) for k, v in r.items()} for r in results]
            for kind, results in runs.items()
        },
        "parameters": {
            "messages_per_run": count,
            "repetitions": repetitions,
            "sessions": SESSIONS,
            "message_bytes": size,
            "messages_per_session": 1,
            "milter_socket": "unix",
            "milter_config": "defaults (shipped wordlists, keyword checks) + 3 SQLite quotas",
            "order": "interleaved bare, null milter, menshen, ... after one warm-up each",
            "cpus": os.cpu_count(),
            # Other work on the machine skews both configurations; this shows how quiet it was.
            "load_average_at_start": [round(x, 2) for x in load_at_start],
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small runs, two repetitions")
    args = parser.parse_args()
    print(json.dumps(run(quick=args.quick), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
