"""Milter-level load: `menshen serve` driven over its socket the way Postfix drives it.

In:  `run(quick=False)`; standalone: `python bench/bench_milter.py [--quick]`. The corpus of
     bench/corpus.py (fixed seed: 40 % Chinese in UTF-8 and GB18030, plain, HTML and
     attachments, 10-100 KB, unique attachments); the daemon with the shipped wordlists,
     attachment rules, three quota rules on the embedded SQLite store and the audit trail to
     a file: the full policy without antivirus.
     The load client is asyncio in this process: one connection per message (Postfix opens
     a milter connection per SMTP session), negotiated like Postfix 3.7, every step the
     filter marked no-reply pipelined, so the client costs little next to the filter.
Out: a JSON-able dict:
       workers   msgs/s with 1 and with 2 workers at 16 connections, interleaved
                 repetitions, and their ratio;
       sweep     msgs/s, p50 and p99 latency (ms) and menshen CPU ms per message at 1, 4,
                 16, 64 and 256 connections (workers: one per core);
       idle      5,000 connections held open at once (negotiated, idle): whether all were
                 served, and the RSS of every menshen process together.
     CPU is the daemon's processes' utime+stime (/proc) over the run; the client's own CPU
     is reported separately.
Fails: raises when the daemon does not start or a message gets no final reply.
Thread safety: single-threaded (asyncio).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT / "tests" / "rig"))

from milter_client import (  # noqa: E402
    POSTFIX_ACTIONS,
    POSTFIX_PROTOCOL,
    SMFIC_BODY,
    SMFIC_BODYEOB,
    SMFIC_CONNECT,
    SMFIC_EOH,
    SMFIC_HEADER,
    SMFIC_HELO,
    SMFIC_MACRO,
    SMFIC_MAIL,
    SMFIC_OPTNEG,
    SMFIC_QUIT,
    SMFIC_RCPT,
    SMFIP_HDR_LEADSPC,
    SMFIP_NOBODY,
    SMFIP_NOCONNECT,
    SMFIP_NOEOH,
    SMFIP_NOHDRS,
    SMFIP_NOHELO,
    SMFIP_NOMAIL,
    SMFIP_NORCPT,
    SMFIP_NR_BODY,
    SMFIP_NR_CONN,
    SMFIP_NR_EOH,
    SMFIP_NR_HDR,
    SMFIP_NR_HELO,
    SMFIP_NR_MAIL,
    SMFIP_NR_RCPT,
    VERSION,
    split_message,
)
from postfix_rig import child_pids  # noqa: E402

from corpus import generate_corpus  # noqa: E402

FINAL = {b"a", b"r", b"t", b"y", b"d", b"c"}  # accept, reject, tempfail, replycode, ...
CONFIG = """
milter:
  drain_seconds: 5
metrics:
  enabled: false
audit:
  target: file
  file: {directory}/audit.log
quotas:
  enabled: true
  timezone: Asia/Shanghai
  check_at_rcpt: false
  store: {{type: sqlite, path: {directory}/quotas.sqlite3}}
  rules:
    - {{name: sender-month, key: account, limit: 100000000, per: month}}
    - {{name: sender-minute, key: account, count: recipients, limit: 100000000, per: minute}}
    - {{name: client-hour, key: client_ip, limit: 100000000, per: hour}}
"""


def _packet(command: bytes, data: bytes = b"") -> bytes:
    return struct.pack("!I", len(data) + 1) + command + data


def _negotiation() -> bytes:
    return _packet(SMFIC_OPTNEG, struct.pack("!III", VERSION, POSTFIX_ACTIONS, POSTFIX_PROTOCOL))


def conversation(raw: bytes, protocol: int, index: int) -> tuple[bytes, int]:
    """Everything the MTA sends after negotiation, and how many replies come before EOM."""
    out: list[bytes] = []
    replies = 0

    def step(command: bytes, data: bytes, skip: int, no_reply: int) -> None:
        nonlocal replies
        if protocol & skip:
            return
        out.append(_packet(command, data))
        if not protocol & no_reply:
            replies += 1

    qid = f"B{index:09X}".encode()
    client = f"10.{index % 200}.{(index // 200) % 250}.9".encode()
    step(
        SMFIC_CONNECT,
        b"client.example\0" + b"4" + struct.pack("!H", 25) + client + b"\0",
        SMFIP_NOCONNECT,
        SMFIP_NR_CONN,
    )
    step(SMFIC_HELO, b"client.example\0", SMFIP_NOHELO, SMFIP_NR_HELO)
    out.append(_packet(SMFIC_MACRO, SMFIC_MAIL + b"i\0" + qid + b"\0"))
    sender = f"<user{index % 500}@example.com>\0".encode()
    step(SMFIC_MAIL, sender, SMFIP_NOMAIL, SMFIP_NR_MAIL)
    out.append(_packet(SMFIC_MACRO, SMFIC_RCPT + b"i\0" + qid + b"\0"))
    step(SMFIC_RCPT, b"<rcpt@example.net>\0", SMFIP_NORCPT, SMFIP_NR_RCPT)
    headers, body = split_message(raw)
    for name, raw_value in headers:
        # Without leading spaces negotiated, the MTA eats the one after the colon.
        value = raw_value
        if not protocol & SMFIP_HDR_LEADSPC and value[:1] == b" ":
            value = value[1:]
        step(SMFIC_HEADER, name.encode() + b"\0" + value + b"\0", SMFIP_NOHDRS, SMFIP_NR_HDR)
    step(SMFIC_EOH, b"", SMFIP_NOEOH, SMFIP_NR_EOH)
    for start in range(0, len(body), 65535):
        step(SMFIC_BODY, body[start : start + 65535], SMFIP_NOBODY, SMFIP_NR_BODY)
    out.append(_packet(SMFIC_MACRO, SMFIC_BODYEOB + b"i\0" + qid + b"\0"))
    out.append(_packet(SMFIC_BODYEOB))
    return b"".join(out), replies


async def _read_packet(reader: asyncio.StreamReader) -> bytes:
    (length,) = struct.unpack("!I", await reader.readexactly(4))
    return await reader.readexactly(length)


class LoadClient:
    def __init__(self, socket_path: str, corpus: Sequence[bytes]) -> None:
        self._path = socket_path
        self._corpus = corpus
        self._protocol: int | None = None
        self._prepared: list[tuple[bytes, int]] = []

    async def _negotiate(
        self,
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int]:
        reader, writer = await asyncio.open_unix_connection(self._path, limit=1 << 20)
        writer.write(_negotiation())
        reply = await _read_packet(reader)
        if reply[:1] != SMFIC_OPTNEG:
            raise RuntimeError(f"bad negotiation reply {reply[:16]!r}")
        _, _, protocol = struct.unpack("!III", reply[1:13])
        return reader, writer, protocol

    async def prepare(self) -> None:
        """Learn the negotiated flags once and build every conversation ahead of time."""
        _, writer, protocol = await self._negotiate()
        writer.write(_packet(SMFIC_QUIT))
        writer.close()
        self._protocol = protocol
        self._prepared = [conversation(raw, protocol, i) for i, raw in enumerate(self._corpus)]

    async def one(self, index: int) -> float:
        started = time.perf_counter()
        reader, writer, protocol = await self._negotiate()
        if protocol != self._protocol:
            raise RuntimeError("the filter negotiated differently on another connection")
        data, replies = self._prepared[index % len(self._prepared)]
        writer.write(data)
        for _ in range(replies):
            await _read_packet(reader)
        while (await _read_packet(reader))[:1] not in FINAL:
            pass
        elapsed = time.perf_counter() - started
        writer.write(_packet(SMFIC_QUIT))
        writer.close()
        return elapsed

    async def load(self, connections: int, messages: int) -> list[float]:
        latencies: list[float] = []
        next_index = 0

        async def session() -> None:
            nonlocal next_index
            while next_index < messages:
                index = next_index
                next_index += 1
                latencies.append(await self.one(index))

        await asyncio.gather(*(session() for _ in range(connections)))
        return latencies

    async def hold(self, connections: int) -> int:
        """Open `connections` at once, negotiate each, keep them all open; returns how many."""
        opened: list[asyncio.StreamWriter] = []
        for _ in range(connections):
            _, writer, _ = await self._negotiate()
            opened.append(writer)
        count = len(opened)
        self.held = opened
        return count

    async def release(self) -> None:
        for writer in getattr(self, "held", []):
            writer.write(_packet(SMFIC_QUIT))
            writer.close()
        self.held = []


class Daemon:
    def __init__(self, directory: Path, workers: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        config = directory / "menshen.yml"
        config.write_text(CONFIG.format(directory=directory), encoding="utf-8")
        self.socket = directory / "menshen.sock"
        menshen = shutil.which("menshen", path=str(Path(sys.executable).parent)) or "menshen"
        self.log = (directory / "menshen.log").open("wb")
        self.process = subprocess.Popen(
            [
                menshen,
                "serve",
                "-c",
                str(config),
                "--socket",
                f"unix:{self.socket}",
                "--workers",
                str(workers),
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        deadline = time.monotonic() + 30
        text = ""
        while "listening on" not in text or not self._accepts():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("menshen did not start:\n" + text[-2000:])
            time.sleep(0.05)  # polling the log and the socket: no other readiness signal
            text = (directory / "menshen.log").read_text(errors="replace")
        self.expected = workers

    def _accepts(self) -> bool:
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(str(self.socket))
            except OSError:
                return False
        return True

    def pids(self) -> list[int]:
        return [self.process.pid, *child_pids(self.process.pid)]

    def cpu_seconds(self) -> float:
        ticks = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def rss_bytes(self) -> int:
        total = 0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            except OSError:
                continue
        return total

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def _measure(daemon: Daemon, client: LoadClient, connections: int, messages: int) -> dict[str, Any]:
    cpu_before = daemon.cpu_seconds()
    own_before = time.process_time()
    started = time.perf_counter()
    latencies = asyncio.run(client.load(connections, messages))
    wall = time.perf_counter() - started
    cpu = daemon.cpu_seconds() - cpu_before
    ordered = sorted(latencies)
    return {
        "connections": connections,
        "messages": len(latencies),
        "msgs_s": round(len(latencies) / wall, 1),
        "p50_ms": round(1000 * ordered[len(ordered) // 2], 2),
        "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
        "menshen_cpu_ms_per_msg": round(1000 * cpu / len(latencies), 3),
        "client_cpu_ms_per_msg": round(
            1000 * (time.process_time() - own_before) / len(latencies), 3
        ),
    }


def run(quick: bool = False) -> dict[str, Any]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    corpus = generate_corpus(80 if quick else 300, seed=11)
    repetitions = 2 if quick else 5
    per_run = 200 if quick else 600
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="menshen-bench-milter-") as tmp:
        base = Path(tmp)
        daemons = {1: Daemon(base / "w1", 1), 2: Daemon(base / "w2", 2)}
        try:
            clients = {n: LoadClient(str(d.socket), corpus) for n, d in daemons.items()}
            for client in clients.values():
                asyncio.run(client.prepare())
                asyncio.run(client.load(8, 40))  # warm: tables, connections, caches
            samples: dict[int, list[float]] = {1: [], 2: []}
            for _ in range(repetitions):
                for workers in (1, 2):  # interleaved, so drift hits both alike
                    result = _measure(daemons[workers], clients[workers], 16, per_run)
                    samples[workers].append(result["msgs_s"])
        finally:
            for daemon in daemons.values():
                daemon.stop()
        scaling = {
            "connections": 16,
            "repetitions": repetitions,
            "one_worker_msgs_s": statistics.median(samples[1]),
            "two_workers_msgs_s": statistics.median(samples[2]),
        }
        scaling["ratio"] = round(scaling["two_workers_msgs_s"] / scaling["one_worker_msgs_s"], 3)

        daemon = Daemon(base / "sweep", cores)
        try:
            client = LoadClient(str(daemon.socket), corpus)
            asyncio.run(client.prepare())
            asyncio.run(client.load(8, 40))
            sweep = [
                _measure(daemon, client, connections, max(per_run, 3 * connections))
                for connections in (1, 4, 16, 64, 256)
            ]
            idle = asyncio.run(_idle(daemon, client, 500 if quick else 5000))
        finally:
            daemon.stop()
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return {
        "workers": scaling,
        "sweep": sweep,
        "idle": idle,
        "corpus_messages": len(corpus),
        "mean_message_kb": round(sum(map(len, corpus)) / len(corpus) / 1024, 1),
        "cores": cores,
    }


async def _idle(daemon: Daemon, client: LoadClient, connections: int) -> dict[str, Any]:
    """Hold `connections` open at once, read the daemon's RSS, and send a message beside."""
    rss_before = daemon.rss_bytes()
    held = await client.hold(connections)
    rss = daemon.rss_bytes()
    latency = await client.one(0)  # mail still flows while every one of them is held
    await client.release()
    return {
        "connections": connections,
        "held": held,
        "rss_mb": round(rss / 2**20, 1),
        "rss_mb_before": round(rss_before / 2**20, 1),
        "message_beside_ms": round(1000 * latency, 1),
    }


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
