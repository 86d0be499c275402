"""What the running daemon exposes: metrics on loopback only, and no secret in its log.

Covered here: the default metrics endpoint is bound to 127.0.0.1 (read from the kernel's
socket table, not from the config); a Redis password in quotas.store.redis_url never
reaches the log, even when Redis is unreachable and every message logs the fallback.
Elsewhere: the socket's mode and group (test_daemon.py), the user the daemon becomes
(test_privileges.py), and log lines that cannot be forged (tests/hostile/test_injection.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from milter_client import Code
from net import free_port

from menshen.config import load_config

if TYPE_CHECKING:  # conftest modules are not importable at run time
    from conftest import StartDaemon

ROOT = Path(__file__).resolve().parents[2]
CLEAN = (ROOT / "samples" / "clean-chinese-business.eml").read_bytes()
SECRET = "Sup3rSecretRedisPassw0rd"


def listening_addresses(port: int) -> set[str]:
    """The local addresses with a TCP socket listening on `port`, from /proc/net/tcp{,6}."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if int(port_hex, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                found.add(address)
    return found


def test_the_metrics_endpoint_listens_on_loopback_only(start_daemon: StartDaemon) -> None:
    assert load_config(None).metrics.address == "127.0.0.1"
    port = free_port()
    daemon = start_daemon(f"metrics:\n  port: {port}\n")
    daemon.wait_for_log(rf"metrics on http://127\.0\.0\.1:{port}/metrics")
    assert listening_addresses(port) == {"0100007F"}  # 127.0.0.1, little-endian hex


def test_a_redis_password_never_reaches_the_log(start_daemon: StartDaemon, tmp_path: Path) -> None:
    dead = free_port()  # nothing listens there: every message takes the local fallback
    daemon = start_daemon(
        "metrics:\n  enabled: false\n"
        "quotas:\n  enabled: true\n  store:\n    type: redis\n"
        f"    redis_url: redis://:{SECRET}@127.0.0.1:{dead}/0\n"
        f"    path: {tmp_path}/quotas.sqlite3\n    retry_seconds: 0\n"
        "  rules:\n    - {name: per-sender, key: sender, limit: 100, per: day}\n"
    )
    for _ in range(3):
        with daemon.client() as client:
            result = client.send_message(CLEAN, "a@sender.example", ("b@example.com",))
        assert result.action is Code.ACCEPT
    daemon.wait_for_log(r"quota store redis unreachable")
    assert SECRET not in daemon.log()
