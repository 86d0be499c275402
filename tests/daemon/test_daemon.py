"""`menshen serve` as Postfix meets it: the real daemon, driven over the milter protocol.

Each test starts the daemon as a subprocess (fixtures in conftest.py) and talks to it with
the MTA-side client in tests/support/milter_client.py, which negotiates and sends like
Postfix 3.7. Covered: verdicts (accept with the verdict header, 550 reject, quarantine then
accept), forged verdict headers deleted, the queue id leading the log line, several messages
per connection, 16 concurrent connections, a message spooled to disk, reload by SIGUSR1 and
by `menshen reload` (good and broken input), the stop signals, draining a message in flight
at SIGTERM, a broken config at start, the socket's mode, group and directory, and an inet
socket.

Most verdict tests share one daemon per module (`shared`): its stop costs libmilter up to
~5 s, and the session-wide reaper does all stops at once at the end.
"""

from __future__ import annotations

import base64
import grp
import os
import re
import signal
import stat
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import Milter
import pytest
from milter_client import (
    POSTFIX_PROTOCOL,
    SMFIP_HDR_LEADSPC,
    Code,
    HeaderChange,
    MilterClient,
    MilterResult,
    split_message,
)
from net import free_port

from menshen.adapter import GuardMilter

if TYPE_CHECKING:  # conftest modules are not importable at run time
    from conftest import Daemon, RunMenshen, StartDaemon

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
SHIPPED_WORDLISTS = ROOT / "wordlists"
VERDICT = "X-Menshen-Verdict"
REJECT_TEXT = "5.7.1 Message rejected by content policy: keyword category {category}"
SENDER = "alice@sender.example"
RCPTS = ("bob@example.com",)

# A term only the test wordlist holds, in a category whose action is quarantine.
HELD_TERM = "内部审计样本"
# A term no shipped list holds; the reload tests add it to invoice_fraud.txt.
NEW_TERM = "特别渠道返点"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def text_message(body: str, subject: str = "hello", extra_headers: str = "") -> bytes:
    """A small UTF-8 text/plain message, CRLF line ends."""
    encoded = base64.encodebytes(body.encode("utf-8")).decode("ascii").replace("\n", "\r\n")
    return (
        f"From: {SENDER}\r\nTo: {RCPTS[0]}\r\nSubject: {subject}\r\n{extra_headers}"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{encoded}"
    ).encode("ascii")


def copy_wordlists(target: Path, extra: dict[str, str] | None = None) -> Path:
    target.mkdir(parents=True)
    for path in SHIPPED_WORDLISTS.glob("*.txt"):
        (target / path.name).write_bytes(path.read_bytes())
    for name, text in (extra or {}).items():
        (target / name).write_text(text, encoding="utf-8")
    return target


_queue_ids = iter(range(0x10000, 0x20000))


def queue_id() -> str:
    """A fresh Postfix-style queue id, so each message's log line can be found."""
    return f"4T{next(_queue_ids):05X}Q"


def send(client: MilterClient, raw: bytes, qid: str | None = None) -> MilterResult:
    return client.send_message(raw, SENDER, RCPTS, queue_id=qid or queue_id())


def assert_accept(result: MilterResult, verdict_prefix: str = "accept") -> None:
    assert result.action is Code.ACCEPT, result
    assert result.stage == "eom", result
    assert result.quarantine is None, result
    values = result.added(VERDICT)
    assert len(values) == 1 and values[0].startswith(verdict_prefix), result


def assert_reject(result: MilterResult, category: str = "invoice_fraud") -> None:
    assert result.action is Code.REPLYCODE, result
    assert result.reply is not None
    assert (result.reply.code, result.reply.text) == (
        "550",
        REJECT_TEXT.format(category=category),
    )
    assert result.headers_added == [] and result.quarantine is None, result


def assert_quarantine(result: MilterResult, category: str = "held") -> None:
    assert result.action is Code.ACCEPT, result
    assert result.quarantine == f"keyword category {category}", result
    assert result.added(VERDICT) == [f"quarantine; score=1; categories={category}"], result
    # The hold request comes before the final accept (Postfix acts on both).
    assert result.modifications[-1].code is Code.QUARANTINE, result


# --- the shared daemon ----------------------------------------------------------------------

SPOOL_MEMORY_BYTES = 4096


@dataclass(frozen=True)
class Shared:
    daemon: Daemon
    spool_directory: Path
    socket_path: Path


@pytest.fixture(scope="module")
def shared(start_module_daemon: StartDaemon, tmp_path_factory: pytest.TempPathFactory) -> Shared:
    """One daemon for the verdict tests: a quarantine category, a small memory spool, and
    its socket in a directory that does not exist yet (two levels missing)."""
    home = tmp_path_factory.mktemp("shared")
    wordlists = copy_wordlists(
        home / "wordlists", {"held.txt": f"# quarantine category for the tests\n{HELD_TERM}\n"}
    )
    spool = home / "spool"
    spool.mkdir()
    socket_path = home / "run" / "menshen" / "menshen.sock"
    config = (
        "wordlists:\n"
        "  categories:\n"
        "    held: {action: quarantine, weight: 1}\n"
        "milter:\n"
        f"  spool_memory_bytes: {SPOOL_MEMORY_BYTES}\n"
        f"  spool_directory: {spool}\n"
        "  drain_seconds: 5\n"
    )
    daemon = start_module_daemon(config, wordlists=wordlists, socket=f"unix:{socket_path}")
    return Shared(daemon, spool, socket_path)


@pytest.fixture
def client(shared: Shared) -> Iterator[MilterClient]:
    with shared.daemon.client() as connection:
        yield connection


# --- verdicts -------------------------------------------------------------------------------

# name -> (message, expected: "accept" | "quarantine" | reject category)
VERDICTS: dict[str, tuple[bytes, str]] = {
    "clean-chinese-business": (sample("clean-chinese-business.eml"), "accept"),
    "clean-specialist": (sample("clean-specialist.eml"), "accept"),
    "kw-body-gbk-base64": (sample("kw-body-gbk-base64.eml"), "invoice_fraud"),
    "kw-attachment-docx": (sample("kw-attachment-docx.eml"), "invoice_fraud"),
    "kw-subject-gb2312": (sample("kw-subject-gb2312.eml"), "invoice_fraud"),
    "kw-body-gb18030-qp": (sample("kw-body-gb18030-qp.eml"), "invoice_fraud"),
    "kw-body-big5": (sample("kw-body-big5.eml"), "invoice_fraud"),
    "kw-html-split": (sample("kw-html-split.eml"), "invoice_fraud"),
    "kw-attachment-txt": (sample("kw-attachment-txt.eml"), "invoice_fraud"),
    "kw-attached-message": (sample("kw-attached-message.eml"), "invoice_fraud"),
    "kw-pharma-en": (sample("kw-pharma-en.eml"), "pharma_spam"),
    # Postfix passes a folded header with its continuation line (joined by LF).
    "kw-folded-subject": (
        text_message(
            "nothing here",
            subject="=?UTF-8?B?6K+35rOo5oSP5Luj5byA?=\r\n =?UTF-8?B?5Y+R56Wo?=",
        ),
        "invoice_fraud",
    ),
    "quarantine-category": (text_message(f"请看{HELD_TERM}，谢谢"), "quarantine"),
}


def check_verdict(result: MilterResult, expected: str) -> None:
    if expected == "accept":
        assert_accept(result)
    elif expected == "quarantine":
        assert_quarantine(result)
    else:
        assert_reject(result, expected)


@pytest.mark.parametrize(("raw", "expected"), VERDICTS.values(), ids=VERDICTS.keys())
def test_verdict(client: MilterClient, raw: bytes, expected: str) -> None:
    check_verdict(send(client, raw), expected)


def test_clean_message_gets_the_verdict_header(client: MilterClient) -> None:
    result = send(client, sample("clean-chinese-business.eml"))
    assert result.action is Code.ACCEPT
    assert result.headers_added == [(VERDICT, "accept; score=0")]
    assert result.headers_changed == []


def test_quarantine_category_is_held_then_accepted(client: MilterClient) -> None:
    result = send(client, text_message(f"请看{HELD_TERM}，谢谢"))
    codes = [reply.code for reply in result.modifications]
    assert codes == [Code.ADDHEADER, Code.ADDHEADER, Code.QUARANTINE]
    assert result.quarantine == "keyword category held"
    # The reason travels with the held message too: Postfix records only "HOLD action".
    assert ("X-Menshen-Reason", "keyword category held") in result.headers_added
    assert result.action is Code.ACCEPT


FORGERIES: dict[str, tuple[str, list[HeaderChange]]] = {
    "one forged header": (
        f"{VERDICT}: accept\r\n",
        [HeaderChange(1, VERDICT, "")],
    ),
    "two forged headers, mixed case": (
        f"{VERDICT}: accept\r\nx-menshen-verdict: accept; score=0\r\n",
        # The last copy first, so the remaining indexes stay valid.
        [HeaderChange(2, VERDICT, ""), HeaderChange(1, VERDICT, "")],
    ),
}


@pytest.mark.parametrize(("headers", "deletions"), FORGERIES.values(), ids=FORGERIES.keys())
def test_forged_verdict_header_is_deleted(
    client: MilterClient, headers: str, deletions: list[HeaderChange]
) -> None:
    clean = send(client, text_message("Meeting moved to 3pm.", extra_headers=headers))
    assert clean.action is Code.ACCEPT
    assert clean.headers_changed == deletions
    assert clean.headers_added == [(VERDICT, "accept; score=0")]
    held = send(client, text_message(f"请看{HELD_TERM}", extra_headers=headers))
    assert held.headers_changed == deletions
    assert held.quarantine == "keyword category held"


def test_queue_id_leads_the_log_line(shared: Shared, client: MilterClient) -> None:
    rejected, accepted = queue_id(), queue_id()
    assert_reject(send(client, sample("kw-body-gbk-base64.eml"), rejected))
    assert_accept(send(client, sample("clean-specialist.eml"), accepted))
    log = shared.daemon.log()
    # The line is logged before the reply is sent, so it is there now.
    assert re.search(rf"^{rejected}: reject from=<{SENDER}> rcpts=1 ", log, re.MULTILINE), log
    assert re.search(rf"^{accepted}: accept from=<{SENDER}> rcpts=1 ", log, re.MULTILINE), log


def test_several_messages_on_one_connection(shared: Shared, client: MilterClient) -> None:
    order = [
        "clean-chinese-business",
        "kw-body-gbk-base64",
        "quarantine-category",
        "kw-attachment-docx",
        "clean-specialist",
        "kw-pharma-en",
    ]
    ids = [queue_id() for _ in order]
    for name, qid in zip(order, ids, strict=True):
        raw, expected = VERDICTS[name]
        check_verdict(send(client, raw, qid), expected)
    log = shared.daemon.log()
    for qid in ids:
        assert re.search(rf"^{qid}: ", log, re.MULTILINE), qid


def test_sixteen_concurrent_connections(shared: Shared) -> None:
    names = list(VERDICTS)

    def session(worker: int) -> list[tuple[str, MilterResult]]:
        # Each connection sends three messages, starting at a different point of the table.
        picks = [names[(worker + step * 5) % len(names)] for step in range(3)]
        with shared.daemon.client() as connection:
            return [(name, send(connection, VERDICTS[name][0])) for name in picks]

    with ThreadPoolExecutor(max_workers=16) as pool:
        sessions = list(pool.map(session, range(16)))
    assert len(sessions) == 16
    for results in sessions:
        for name, result in results:
            check_verdict(result, VERDICTS[name][1])


def test_message_larger_than_the_memory_spool_is_spooled_to_disk(shared: Shared) -> None:
    """Past milter.spool_memory_bytes the message moves to an (unlinked) file in
    milter.spool_directory; it is still judged on every byte, the keyword at the very end."""
    filler = "本季度经营情况良好，各部门按计划推进工作。\n" * 12000  # ~ 800 KB of UTF-8
    raw = text_message(filler + "如需代开发票请联系。\n")
    assert len(raw) > 100 * SPOOL_MEMORY_BYTES
    headers, body = split_message(raw)
    qid = queue_id()
    with shared.daemon.client() as connection:
        connection.connect("192.0.2.10")
        connection.helo("client.example")
        connection.mail(SENDER, queue_id=qid)
        connection.rcpt(RCPTS[0], queue_id=qid)
        connection.data(qid)
        for name, value in headers:
            connection.header(name, value)
        connection.eoh(qid)
        assert connection.body(body) is None
        spooled = wait_for_spool_file(shared.daemon.pid, shared.spool_directory)
        assert spooled, f"no open file under {shared.spool_directory}"
        result = connection.eom(qid)
        connection.abort()
    assert_reject(result)
    assert re.search(rf"^{qid}: reject ", shared.daemon.log(), re.MULTILINE)
    # A large clean message is accepted, through the same disk spool.
    with shared.daemon.client() as connection:
        assert_accept(send(connection, text_message(filler)))


def wait_for_spool_file(pid: int, directory: Path, timeout: float = 5.0) -> list[str]:
    """Open files of `pid` under `directory` (spool files are unlinked; /proc still names
    them). Polled: without a per-chunk reply the last body write may still be in flight."""
    deadline = time.monotonic() + timeout
    fd_dir = Path(f"/proc/{pid}/fd")
    while True:
        found = []
        for fd in fd_dir.iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue  # closed meanwhile
            if target.startswith(f"{directory}/"):
                found.append(target)
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


# --- negotiation ------------------------------------------------------------------------------


def test_negotiation_carries_the_adapter_declarations(client: MilterClient) -> None:
    """What Postfix is told must be what the adapter's decorators declare: pymilter's own
    rule (offered flags minus the class's protocol mask) and its @symlist macro lists.

    pymilter 1.0.5's own setsymlist fails inside negotiation and the fallback silently
    drops all of it; the adapter overrides setsymlist, and this test keeps it that way."""
    negotiated = client.negotiated
    assert negotiated.version == 6
    assert hex(negotiated.protocol) == hex(POSTFIX_PROTOCOL & ~GuardMilter.protocol_mask())
    assert negotiated.has(SMFIP_HDR_LEADSPC)  # header values byte for byte
    declared = {
        stage: tuple(symbols)
        for name, stage in Milter.MACRO_CALLBACKS.items()
        if (symbols := getattr(getattr(GuardMilter, name), "_symlist", None)) is not None
    }
    assert declared  # i and {auth_authen} at MAIL, i at RCPT and end of message
    assert dict(negotiated.macro_lists) == declared


# --- the socket -------------------------------------------------------------------------------


def test_unix_socket_mode_group_and_directory(shared: Shared) -> None:
    mode = shared.socket_path.stat()
    assert stat.S_ISSOCK(mode.st_mode)
    assert stat.S_IMODE(mode.st_mode) == 0o660
    directory = shared.socket_path.parent.stat()
    assert stat.S_ISDIR(directory.st_mode)  # created, with its missing parent, by the daemon
    assert stat.S_IMODE(directory.st_mode) & 0o007 == 0  # nothing for others
    try:
        postfix_gid: int | None = grp.getgrnam("postfix").gr_gid
    except KeyError:
        postfix_gid = None  # no postfix group on this machine: the group is left alone
    if postfix_gid is not None:
        assert mode.st_gid == postfix_gid
        assert directory.st_gid == postfix_gid


def test_inet_socket(start_daemon: StartDaemon) -> None:
    port = free_port()
    daemon = start_daemon(socket=f"inet:{port}@127.0.0.1")
    assert f"listening on inet:{port}@127.0.0.1" in daemon.log()
    with daemon.client() as connection:
        assert_accept(send(connection, sample("clean-chinese-business.eml")))
        assert_reject(send(connection, sample("kw-body-gbk-base64.eml")))


# --- reload -----------------------------------------------------------------------------------


@pytest.fixture
def reloadable(start_daemon: StartDaemon, tmp_path: Path) -> Daemon:
    """A daemon over a private, writable copy of the shipped wordlists."""
    return start_daemon(wordlists=copy_wordlists(tmp_path / "wordlists"))


def append_term(daemon: Daemon, term: str) -> None:
    path = wordlist_dir(daemon) / "invoice_fraud.txt"
    path.write_text(path.read_text(encoding="utf-8") + f"{term}\n", encoding="utf-8")


def wordlist_dir(daemon: Daemon) -> Path:
    match = re.search(r"directory: (\S+)", daemon.config_file.read_text(encoding="utf-8"))
    assert match is not None
    return Path(match.group(1))


def reload_lines(log: str) -> list[str]:
    return re.findall(r"^(?:reloaded .*|error: reload refused.*)$", log, re.MULTILINE)


def test_sigusr1_reload_picks_up_a_new_term(reloadable: Daemon) -> None:
    with reloadable.client() as connection:
        assert_accept(send(connection, text_message(f"关于{NEW_TERM}的说明")))
    append_term(reloadable, NEW_TERM)
    mark = len(reloadable.log())
    reloadable.signal(signal.SIGUSR1)
    reloadable.wait_for_log(r"^reloaded ", after=mark)
    with reloadable.client() as connection:
        assert_reject(send(connection, text_message(f"关于{NEW_TERM}的说明")))
        assert_accept(send(connection, sample("clean-chinese-business.eml")))


def test_sigusr1_with_a_broken_wordlist_is_refused(reloadable: Daemon) -> None:
    broken = wordlist_dir(reloadable) / "gambling.txt"
    broken.write_bytes(broken.read_bytes() + b"\xff\xfe not UTF-8\n")
    append_term(reloadable, NEW_TERM)  # must not take effect: the reload is all or nothing
    mark = len(reloadable.log())
    reloadable.signal(signal.SIGUSR1)
    refused = reloadable.wait_for_log(r"^error: reload refused.*$", after=mark)
    assert "gambling.txt" in refused.group(0)
    assert reloadable.running()
    with reloadable.client() as connection:  # the running engine stays
        assert_reject(send(connection, sample("kw-body-gbk-base64.eml")))
        assert_accept(send(connection, text_message(f"关于{NEW_TERM}的说明")))
        assert_accept(send(connection, sample("clean-chinese-business.eml")))


def test_reload_command_signals_a_sound_config(reloadable: Daemon, run_menshen: RunMenshen) -> None:
    append_term(reloadable, NEW_TERM)
    mark = len(reloadable.log())
    done = run_menshen(
        "reload", "-c", str(reloadable.config_file), "--pid-file", str(reloadable.pid_file)
    )
    assert done.returncode == 0, done.stderr
    assert f"pid {reloadable.pid}" in done.stdout
    reloadable.wait_for_log(r"^reloaded ", after=mark)
    with reloadable.client() as connection:
        assert_reject(send(connection, text_message(f"关于{NEW_TERM}的说明")))


def test_reload_command_refuses_a_broken_config(
    reloadable: Daemon, run_menshen: RunMenshen, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("mode: enforce\nmilter:\n  no_such_key: 1\n", encoding="utf-8")
    mark = len(reloadable.log())
    done = run_menshen("reload", "-c", str(broken), "--pid-file", str(reloadable.pid_file))
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert f"{broken}:3" in done.stderr, done.stderr
    assert "reload signalled" not in done.stdout
    # Proof that no signal went out: signal once ourselves; once that reload is logged,
    # a reload triggered earlier by the command would already be logged before it.
    reloadable.signal(signal.SIGUSR1)
    reloadable.wait_for_log(r"^reloaded ", after=mark)
    assert len(reload_lines(reloadable.log()[mark:])) == 1, reloadable.log()[mark:]
    assert reloadable.running()


# --- stopping ---------------------------------------------------------------------------------

STOP_SIGNALS = {"SIGHUP": signal.SIGHUP, "SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM}


@dataclass(frozen=True)
class Stopped:
    daemon: Daemon
    code: int


@pytest.fixture(scope="module")
def stopped_by(start_module_daemon: StartDaemon) -> dict[str, Stopped]:
    """One daemon per stop signal, all signalled at once (libmilter takes ~5 s to notice)."""
    daemons = {name: start_module_daemon() for name in STOP_SIGNALS}
    for name, daemon in daemons.items():
        with daemon.client() as connection:  # a served connection, closed before the stop
            assert_accept(send(connection, sample("clean-specialist.eml")))
        daemon.signal(STOP_SIGNALS[name])
    return {name: Stopped(daemon, daemon.wait()) for name, daemon in daemons.items()}


@pytest.mark.parametrize("name", STOP_SIGNALS)
def test_stop_signal_exits_cleanly(stopped_by: dict[str, Stopped], name: str) -> None:
    stopped = stopped_by[name]
    log = stopped.daemon.log()
    assert stopped.code == 0, log
    assert re.search(r"^stopped$", log, re.MULTILINE), log
    assert "Traceback" not in log
    assert not stopped.daemon.pid_file.exists()


def test_sigterm_mid_message_still_gets_its_verdict(start_daemon: StartDaemon) -> None:
    daemon = start_daemon("milter:\n  drain_seconds: 30\n")
    headers, body = split_message(sample("kw-body-gbk-base64.eml"))
    qid = queue_id()
    with daemon.client() as connection:
        connection.connect("192.0.2.10")
        connection.helo("client.example")
        connection.mail(SENDER, queue_id=qid)
        connection.rcpt(RCPTS[0], queue_id=qid)
        connection.data(qid)
        for name, value in headers:
            connection.header(name, value)
        mark = len(daemon.log())
        daemon.signal(signal.SIGTERM)
        daemon.wait_for_log(r"^stopping: waiting for 1 connection\(s\) to finish$", after=mark)
        connection.eoh(qid)
        connection.body(body)
        result = connection.eom(qid)
        connection.quit()
    assert_reject(result)
    assert daemon.wait() == 0, daemon.log()
    log = daemon.log()
    assert re.search(rf"^{qid}: reject ", log, re.MULTILINE), log
    assert "still open" not in log, log
    assert re.search(r"^stopped$", log, re.MULTILINE), log


# --- start-up errors ----------------------------------------------------------------------------


def test_broken_config_at_start_exits_2_naming_file_and_line(start_daemon: StartDaemon) -> None:
    daemon = start_daemon("mode: enforce\nmilter:\n  spool_memory_bytes: lots\n", wait_ready=False)
    assert daemon.wait(timeout=30) == 2
    log = daemon.log()
    assert re.search(rf"^error: {re.escape(str(daemon.config_file))}:3\b", log, re.M), log
    assert "listening" not in log
    assert daemon.socket_path is not None and not daemon.socket_path.exists()
