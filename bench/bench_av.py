"""End to end with antivirus: Postfix + menshen (keywords + AV) vs Postfix + clamav-milter.

In:  `run(quick=False)`; standalone: `python bench/bench_av.py [--quick]` (as root, with
     Postfix, clamav-daemon and clamav-milter installed: `make deps`). One real clamd runs
     on a unix socket with the tiny generated signature database (tests/support/clamd_rig.py;
     EICAR is assembled at run time by tests/support/clamd_samples.py). Two private Postfix
     instances run side by side on loopback (tests/rig/postfix_rig.py), both relaying to an
     smtp-sink that counts:
       A "menshen": smtpd_milters = `menshen serve` on a unix socket, configured with only
         `mode: enforce` and `antivirus: {enabled: true, clamd: [unix:<clamd socket>]}`, so
         keyword checks, attachment rules and the clamd scan all run with their defaults,
         with workers on every core;
       B "clamav_milter": smtpd_milters = Debian's clamav-milter on a unix socket, against
         the same clamd (OnClean Accept, OnInfected Reject, OnFail Defer).
     Every message carries an attachment of unique random bytes, because clamd caches clean
     results by hash and a repeated attachment would measure the cache, not the scan. Hence
     no smtp-source (it sends one fixed file): a client in this process sends messages built
     before the timed part, in 20 concurrent SMTP sessions, one message per session (like
     smtp-source's default). A message is ~20 KB: a short mixed Chinese/English text body
     (UTF-8, base64) and a 10-15 KB `report-<n>.pdf` of random bytes behind a PDF header.
     About 0.5 % of the messages instead carry EICAR in a zip (`report-<n>.zip`, the member
     named `notes.txt` so that only the virus scan, not an attachment-name rule, refuses it).
     A and B get different message sets of identical construction (same seed scheme, other
     attachment bytes), so no clamd cache hit crosses variants or repetitions. Runs
     alternate A B A B ... after one untimed warm-up each; figures are medians.
Out: a JSON-able dict: menshen_av_msgs_s, clamav_milter_msgs_s, ratio (median menshen /
     median clamav-milter), pair_ratios (each menshen run / the clamav-milter run after
     it), CPU ms per message of each milter process, of clamd and of Postfix in
     each variant (and of the sending client), the per-repetition lists and the parameters
     (load average at start included). Throughput = messages handled (accepted ones counted
     when smtp-sink has them, refused ones when the client has the refusal) / wall time from
     the first connection to the last of those events. CPU comes from /proc utime+stime
     deltas: each milter process; clamd (all its threads); Postfix's master, its live
     children and (via cutime/cstime) its exited children.
Fails: RigError when a tool is missing, a daemon does not start, a sample message is not
     judged as intended by `menshen check`, or a run does not refuse exactly the EICAR
     messages and deliver all the others within its deadline (with replies and log tails).
     Every process started here is stopped, also on failure.
Thread safety: one benchmark at a time; it saturates the machine by design.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests" / "rig"))
sys.path.insert(0, str(ROOT / "tests" / "support"))

from clamd_rig import ClamdServer, find_clamd, write_signature_db  # noqa: E402
from clamd_samples import eicar, zip_of  # noqa: E402
from postfix_rig import (  # noqa: E402
    SBIN_DIRS,
    PostfixRig,
    RigError,
    cpu_seconds,
    menshen_executable,
    tail,
    unix_socket_accepts,
    wait_until,
)

from bench_e2e import Milter, postfix_cpu  # noqa: E402
from corpus import cjk_heavy_text  # noqa: E402

SESSIONS = 20
SENDER = "alice@sender.test"
RECIPIENT = "bob@example.com"
BODY_CHARS = 800  # ~2.4 KB of UTF-8, ~3.2 KB in base64
ATTACHMENT_BYTES = (10_000, 15_000)
# One message in EICAR_EVERY carries EICAR (index % EICAR_EVERY == EICAR_EVERY // 2): 0.5 %.
EICAR_EVERY = 200
BODY_POOL = 4  # distinct body texts, each checked once against the keyword lists
# A PDF header: the attachment is what its name and type say, so no attachment rule
# (type mismatch) fires, and clamd's file-type detection sees the same thing in A and B.
PDF_HEAD = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"


# -- messages ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """The messages of one run, built before it, and which of them carry EICAR."""

    tag: str
    messages: list[bytes]
    infected: frozenset[int]

    @property
    def size_bytes(self) -> int:
        return sum(len(m) for m in self.messages)


def is_infected(index: int) -> bool:
    return index % EICAR_EVERY == EICAR_EVERY // 2


def build_message(tag: str, index: int, body: str) -> bytes:
    """Message `index` of the set `tag`: the attachment bytes depend on both (CRLF)."""
    rng = random.Random(f"{tag}:{index}")
    msg = EmailMessage()
    msg["From"] = f"Zhang Wei <{SENDER}>"
    msg["To"] = f"Bob <{RECIPIENT}>"
    msg["Subject"] = f"季度报告 quarterly report {index}"
    msg["Message-ID"] = f"<bench-av-{tag}-{index}@sender.test>"
    msg.set_content(body, charset="utf-8", cte="base64")
    if is_infected(index):
        # The member is named .txt: a blocked name (.com) would let menshen's attachment
        # rules refuse it without clamd, which clamav-milter cannot do.
        attachment = zip_of("notes.txt", eicar())
        msg.add_attachment(
            attachment, maintype="application", subtype="zip", filename=f"report-{index}.zip"
        )
    else:
        size = rng.randint(*ATTACHMENT_BYTES)
        attachment = PDF_HEAD + rng.randbytes(size - len(PDF_HEAD))
        msg.add_attachment(
            attachment, maintype="application", subtype="pdf", filename=f"report-{index}.pdf"
        )
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def build_batch(tag: str, count: int, bodies: list[str]) -> Batch:
    messages = [build_message(tag, i, bodies[i % len(bodies)]) for i in range(count)]
    return Batch(tag, messages, frozenset(i for i in range(count) if is_infected(i)))


def menshen_check(config: Path, raw: bytes, workdir: Path) -> tuple[int, dict[str, Any]]:
    """`menshen check --json` on one message: (exit status, verdict)."""
    eml = workdir / "check.eml"
    eml.write_bytes(raw)
    check = subprocess.run(
        [menshen_executable(), "check", "-c", str(config), "--json", str(eml)],
        capture_output=True,
        check=False,
    )
    try:
        verdict = json.loads(check.stdout)
    except json.JSONDecodeError:
        raise RigError(
            f"menshen check failed ({check.returncode}): {check.stderr.decode()[-2000:]}"
        ) from None
    return check.returncode, verdict


def checked_bodies(config: Path, workdir: Path) -> list[str]:
    """BODY_POOL body texts the engine accepts, each inside a full clean message.

    Random text might form a listed term, so seeds that do are skipped. The engine runs with
    the benchmark's configuration, so the PDF attachment also passes the attachment rules
    and clamd's scan. Finally an EICAR message must be refused by the virus scan.
    """
    bodies: list[str] = []
    for seed in range(1, 50):
        body = cjk_heavy_text(BODY_CHARS, seed)
        status, _verdict = menshen_check(config, build_message("check", 0, body), workdir)
        if status == 0:
            bodies.append(body)
            if len(bodies) == BODY_POOL:
                break
    if len(bodies) < BODY_POOL:
        raise RigError("too few seeds gave a body text the default engine accepts")
    infected_index = EICAR_EVERY // 2
    status, verdict = menshen_check(
        config, build_message("check", infected_index, bodies[0]), workdir
    )
    codes = {f["code"] for f in verdict["findings"]}
    if status == 0 or verdict["action"] != "reject" or "AV_INFECTED" not in codes:
        raise RigError(f"the EICAR sample is not refused by the virus scan: {verdict}")
    return bodies


# -- the two milters -----------------------------------------------------------------------


def menshen_milter(workdir: Path, socket: Path, clamd: ClamdServer) -> Milter:
    """`menshen serve` with the antivirus on, every other key at its shipped default."""
    milter = Milter(workdir, socket)
    milter.config.write_text(
        f"mode: enforce\nantivirus:\n  enabled: true\n  clamd:\n    - {clamd.address}\n"
    )
    return milter


def find_clamav_milter() -> str:
    found = shutil.which("clamav-milter")
    if found:
        return found
    for directory in SBIN_DIRS:
        candidate = Path(directory) / "clamav-milter"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise RigError(
        "clamav-milter not found: install the Debian package 'clamav-milter' (make deps)"
    )


class ClamavMilter:
    """Debian's clamav-milter in the foreground on a unix socket, scanning with our clamd."""

    def __init__(self, workdir: Path, socket: Path, clamd: ClamdServer) -> None:
        self.socket = socket
        self.config = workdir / "clamav-milter.conf"
        self.log_path = workdir / "clamav-milter.log"
        self.out_path = workdir / "clamav-milter.out"
        lines = [
            f"MilterSocket unix:{socket}",
            # smtpd runs as `postfix`; the milter runs as root here.
            "MilterSocketMode 666",
            "FixStaleSocket true",
            "Foreground true",
            f"ClamdSocket unix:{clamd.socket_path}",
            "OnClean Accept",
            "OnInfected Reject",
            "RejectMsg Virus found: %v",
            "OnFail Defer",
            "AddHeader Replace",
            f"LogFile {self.log_path}",
            "LogInfected Basic",
            "MaxFileSize 25M",
        ]
        if os.geteuid() == 0:
            # Otherwise it switches to the `clamav` user, which cannot reach clamd's socket
            # (mode 600, owned by root) nor write into this tree.
            lines.append("User root")
        self.config.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        with open(self.out_path, "ab") as out:
            self.process = subprocess.Popen(
                [find_clamav_milter(), "-c", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

        def listening() -> bool | None:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RigError(f"clamav-milter exited: {self.diagnostics()}")
            return True if unix_socket_accepts(self.socket) else None

        wait_until(listening, timeout, "clamav-milter's socket", self.diagnostics)

    def diagnostics(self) -> str:
        return f"{tail(self.log_path)}\n{tail(self.out_path)}".strip()

    def cpu(self) -> float:
        assert self.process is not None
        return cpu_seconds(self.process.pid)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


# -- one run -------------------------------------------------------------------------------


@dataclass
class Outcome:
    code: int
    text: str
    at: float  # time.monotonic() when the final reply came


def send_batch(rig: PostfixRig, batch: Batch, deadline_s: float) -> list[Outcome]:
    """Send every message of `batch` over SESSIONS concurrent sessions, one per session."""
    outcomes: list[Outcome | None] = [None] * len(batch.messages)
    indices: Iterator[int] = iter(range(len(batch.messages)))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                index = next(indices, None)
            if index is None:
                return
            code, text = rig.send(
                batch.messages[index], sender=SENDER, rcpts=(RECIPIENT,), timeout=deadline_s
            )
            outcomes[index] = Outcome(code, text, time.monotonic())

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(SESSIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=deadline_s)
    if any(thread.is_alive() for thread in threads) or any(o is None for o in outcomes):
        raise RigError(f"sending {batch.tag} did not finish within {deadline_s:.0f}s")
    return [o for o in outcomes if o is not None]


def one_run(
    rig: PostfixRig,
    batch: Batch,
    milter_cpu: Any,
    clamd: ClamdServer,
    deadline_s: float,
    diagnostics: Any,
) -> dict[str, float]:
    """Send `batch` through `rig`; check every outcome; return throughput and CPU figures."""
    assert clamd.process is not None
    rig.wait_drained(timeout=60)
    count = len(batch.messages)
    before_sink = rig.sink.received
    before_pf = postfix_cpu(rig)
    before_milter = milter_cpu()
    before_clamd = cpu_seconds(clamd.process.pid)
    before_client = time.process_time()
    start = time.monotonic()
    outcomes = send_batch(rig, batch, deadline_s)
    refused = {i for i, o in enumerate(outcomes) if 500 <= o.code < 600}
    accepted = {i for i, o in enumerate(outcomes) if o.code == 250}
    if refused != batch.infected or len(accepted) != count - len(batch.infected):
        wrong = [
            f"#{i}: {o.code} {o.text}"
            for i, o in enumerate(outcomes)
            if (o.code == 250) == (i in batch.infected)
        ]
        raise RigError(
            f"{batch.tag}: expected exactly {sorted(batch.infected)} refused and the rest "
            f"accepted; {len(wrong)} wrong: {wrong[:10]}\n{diagnostics()}\n{tail(rig.maillog)}"
        )
    wait_until(
        lambda: True if rig.sink.received - before_sink >= len(accepted) else None,
        deadline_s,
        f"{len(accepted)} messages at smtp-sink (have {rig.sink.received - before_sink})",
        lambda: tail(rig.maillog),
    )
    assert rig.sink.last_received_at is not None
    end = max([rig.sink.last_received_at] + [outcomes[i].at for i in refused])
    wall = end - start
    rig.wait_drained(timeout=60)
    if rig.sink.received - before_sink != len(accepted):
        raise RigError(f"{batch.tag}: smtp-sink got more messages than were accepted")
    per_msg = 1000 / count
    return {
        "msgs_s": count / wall,
        "wall_s": wall,
        "refused": len(refused),
        "milter_cpu_ms_per_msg": (milter_cpu() - before_milter) * per_msg,
        "clamd_cpu_ms_per_msg": (cpu_seconds(clamd.process.pid) - before_clamd) * per_msg,
        "postfix_cpu_ms_per_msg": (postfix_cpu(rig) - before_pf) * per_msg,
        # The sending client shares the machine; its cost is the same in both variants.
        "client_cpu_ms_per_msg": (time.process_time() - before_client) * per_msg,
    }


def run(quick: bool = False) -> dict[str, Any]:
    count = 300 if quick else 1500
    # Runs on this shared machine vary by +-15 %; five interleaved pairs keep the median
    # of the ratio within a few per cent.
    repetitions = 3 if quick else 5
    warmup = 200
    deadline_s = 180.0
    base = Path(tempfile.mkdtemp(prefix="menshen-bench-av-"))
    # smtpd and smtp-sink run as `postfix` and must traverse this tree (see postfix_rig).
    base.chmod(0o755)
    clamd_dir = base / "clamd"
    (clamd_dir / "db").mkdir(parents=True)
    clamd = ClamdServer(find_clamd(), clamd_dir, write_signature_db(clamd_dir / "db"))
    menshen_socket = base / "run" / "menshen.sock"
    clamav_socket = base / "run-cm" / "clamav-milter.sock"
    guarded = PostfixRig(base / "menshen", menshen_socket, dump=False, count=True)
    clamav_rig = PostfixRig(base / "clamav-milter", clamav_socket, dump=False, count=True)
    menshen = menshen_milter(base, menshen_socket, clamd)
    clamav = ClamavMilter(base, clamav_socket, clamd)
    runs: dict[str, list[dict[str, float]]] = {"menshen": [], "clamav_milter": []}
    load_at_start = os.getloadavg()
    try:
        clamd.write_config()
        clamd.start()
        bodies = checked_bodies(menshen.config, base)
        menshen.start()
        clamav.start()
        guarded.start()
        clamav_rig.start()

        def menshen_logs() -> str:
            return tail(menshen.log_path)

        def go(kind: str, tag: str, size: int) -> dict[str, float]:
            batch = build_batch(f"{kind}-{tag}", size, bodies)
            if kind == "menshen":
                return one_run(guarded, batch, menshen.cpu, clamd, deadline_s, menshen_logs)
            return one_run(clamav_rig, batch, clamav.cpu, clamd, deadline_s, clamav.diagnostics)

        go("menshen", "warmup", warmup)
        go("clamav_milter", "warmup", warmup)
        for rep in range(1, repetitions + 1):
            for kind, results in runs.items():
                results.append(go(kind, str(rep), count))
        sample = build_batch("size", 64, bodies)
    finally:
        clamav_rig.stop()
        guarded.stop()
        clamav.stop()
        menshen.stop()
        clamd.stop()
        if not os.environ.get("MENSHEN_KEEP_RIG"):
            shutil.rmtree(base, ignore_errors=True)

    def median(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[kind])

    menshen_msgs_s = median("menshen", "msgs_s")
    clamav_msgs_s = median("clamav_milter", "msgs_s")
    # Each menshen run and the clamav-milter run right after it saw nearly the same machine.
    pair_ratios = [
        m["msgs_s"] / c["msgs_s"]
        for m, c in zip(runs["menshen"], runs["clamav_milter"], strict=True)
    ]
    return {
        "menshen_av_msgs_s": round(menshen_msgs_s, 1),
        "clamav_milter_msgs_s": round(clamav_msgs_s, 1),
        "ratio": round(menshen_msgs_s / clamav_msgs_s, 3),
        "pair_ratios": [round(r, 3) for r in pair_ratios],
        "menshen_cpu_ms_per_msg": round(median("menshen", "milter_cpu_ms_per_msg"), 3),
        "clamav_milter_cpu_ms_per_msg": round(median("clamav_milter", "milter_cpu_ms_per_msg"), 3),
        "clamd_cpu_ms_per_msg_menshen": round(median("menshen", "clamd_cpu_ms_per_msg"), 3),
        "clamd_cpu_ms_per_msg_clamav_milter": round(
            median("clamav_milter", "clamd_cpu_ms_per_msg"), 3
        ),
        "postfix_cpu_ms_per_msg_menshen": round(median("menshen", "postfix_cpu_ms_per_msg"), 3),
        "postfix_cpu_ms_per_msg_clamav_milter": round(
            median("clamav_milter", "postfix_cpu_ms_per_msg"), 3
        ),
        "client_cpu_ms_per_msg": round(
            statistics.median(r["client_cpu_ms_per_msg"] for rs in runs.values() for r in rs), 3
        ),
        "repetitions": {
            kind: [{k: round(v, 3) for k, v in r.items()} for r in results]
            for kind, results in runs.items()
        },
        "parameters": {
            "messages_per_run": count,
            "infected_per_run": sum(is_infected(i) for i in range(count)),
            "warmup_messages": warmup,
            "repetitions": repetitions,
            "sessions": SESSIONS,
            "messages_per_session": 1,
            "mean_message_bytes": round(sample.size_bytes / len(sample.messages)),
            "attachment_bytes": list(ATTACHMENT_BYTES),
            "milter_socket": "unix",
            "menshen_config": "mode enforce, antivirus on; keywords and attachment rules default",
            "clamav_milter_config": "OnClean Accept, OnInfected Reject, OnFail Defer, "
            "AddHeader Replace, MaxFileSize 25M",
            "clamd": "one shared clamd, MaxThreads 4, 3-signature test database",
            "client": "in-process smtplib, one thread per session",
            "order": "interleaved menshen, clamav-milter, ... after one warm-up each",
            "cpus": os.cpu_count(),
            # Other work on the machine skews both variants; this shows how quiet it was.
            "load_average_at_start": [round(x, 2) for x in load_at_start],
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small runs (300 messages)")
    args = parser.parse_args()
    print(json.dumps(run(quick=args.quick), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
