"""Suite-wide pytest set-up: the shared test helpers, and the real clamd and Redis fixtures.

tests/ holds no packages (no __init__.py, pytest runs with --import-mode=importlib), so
helpers such as `milter_client` are found by putting tests/support on sys.path. Never add
the repository root instead: its `milter/` source directory would shadow pymilter's C
module `milter`.
"""

from __future__ import annotations

import sys
from pathlib import Path

SUPPORT = str(Path(__file__).resolve().parent / "support")
if SUPPORT not in sys.path:
    sys.path.insert(0, SUPPORT)

# Imported after the path is set: these helpers live in tests/support.
from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402
from clamd_rig import ClamdRigError, ClamdServer, find_clamd, write_signature_db  # noqa: E402
from redis_rig import RedisRigError, RedisServer  # noqa: E402


@pytest.fixture(scope="session")
def signature_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny generated signature database (EICAR built at run time, never committed)."""
    return write_signature_db(tmp_path_factory.mktemp("clamdb"))


@pytest.fixture(scope="session")
def clamd(tmp_path_factory: pytest.TempPathFactory, signature_db: Path) -> Iterator[ClamdServer]:
    """Debian's clamd on a unix socket in a temp dir; a missing clamd fails, never skips."""
    try:
        server = ClamdServer(find_clamd(), tmp_path_factory.mktemp("clamd"), signature_db)
        server.write_config()
        server.start()
    except ClamdRigError as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        server.kill()


def start_redis(directory: Path) -> RedisServer:
    """A started RedisServer in `directory`; a missing or broken redis-server fails the test."""
    try:
        server = RedisServer(directory)
        server.start()
    except RedisRigError as exc:
        pytest.fail(str(exc))
    return server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """Debian's redis-server on 127.0.0.1:<free port>, shared by the session; never skipped.

    Tests that stop or restart Redis use `private_redis` instead, so they cannot take this
    one away from the others.
    """
    server = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.kill()  # nothing is persisted (--save ""), so there is nothing to flush


@pytest.fixture
def fresh_redis(redis_server: RedisServer) -> RedisServer:
    """The session's Redis with every database emptied (FLUSHALL) before the test."""
    import redis  # noqa: PLC0415 - only the Redis tests need the client

    client = redis.Redis.from_url(redis_server.url, socket_timeout=5.0)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own, free to be stopped, killed and restarted on its port."""
    server = start_redis(tmp_path / "redis")
    try:
        yield server
    finally:
        server.kill()
