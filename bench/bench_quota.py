"""Quota cost per message: the engine with no quota, and over each store, same run.

In:  `run(quick=False)`; standalone: `python bench/bench_quota.py [--quick]`. The corpus of
     bench/corpus.py (fixed seed); the shipped configuration plus three quota rules (sender
     per month, sender per minute counting recipients, client address per hour), limits
     high enough never to refuse. Each message has its own sender, so every admission
     writes new counters, as a mail stream with many senders does. Redis is Debian's
     redis-server, started on a free loopback port by the tests' rig (tests/support).
Out: a JSON-able dict: CPU ms per message of `Engine.evaluate` for "none", "memory",
     "sqlite" and "redis" (process CPU time, so the Redis server's own CPU is not in it),
     the share each store adds to the no-quota figure, the quota stage's time against the
     rest of the same evaluations, summed over all messages (the goal's figure:
     a difference of two whole runs drowns a 3 % cost in the machine's noise), and the
     Redis commands per message
     (from INFO commandstats), which must be one script call.
     Figures are medians over interleaved repetitions.
Fails: raises when redis-server cannot be started.
Thread safety: single-threaded.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

import redis
from redis_rig import RedisServer

from corpus import generate_corpus
from menshen.composition import assemble, quota_limiter
from menshen.config import Config, QuotaStoreKind, load_config, parse_config
from menshen.engine import Engine
from menshen.model import Envelope

RULES = """
quotas:
  enabled: true
  timezone: Asia/Shanghai
  rules:
    - {name: sender-month, key: account, limit: 100000000, per: month}
    - {name: sender-minute, key: account, count: recipients, limit: 100000000, per: minute}
    - {name: client-hour, key: client_ip, limit: 100000000, per: hour}
"""


def _script_calls(server: RedisServer) -> int:
    """EVALSHA and EVAL calls the server has answered (INFO commandstats)."""
    stats = redis.Redis(port=server.port).info("commandstats")
    return sum(
        int(value["calls"])
        for name, value in stats.items()
        if name in ("cmdstat_evalsha", "cmdstat_eval")
    )


def _engine(base: Config, kind: str, directory: Path, redis_url: str) -> Engine:
    if kind == "none":
        return assemble(base).engine
    with_rules = parse_config(RULES, "bench.yml", base_dir=None).quotas
    store = replace(
        with_rules.store,
        kind=QuotaStoreKind(kind),
        path=directory / f"{kind}.sqlite3",
        redis_url=redis_url,
    )
    quotas = replace(with_rules, store=store)
    settings = replace(base, quotas=quotas)
    return assemble(settings, limiter=quota_limiter(quotas)).engine


def _cpu_ms_per_message(
    engine: Engine,
    corpus: list[bytes],
    offset: int,
    shares: list[tuple[float, float]] | None = None,
) -> float:
    """CPU ms per message; `shares` gets each message's (quota stage, rest of the evaluation)."""
    started = time.process_time()
    for index, raw in enumerate(corpus):
        envelope = Envelope(
            client_ip=f"10.{(offset + index) % 250}.{index % 250}.7",
            sender=f"user{offset + index}@example.com",
            recipients=("a@example.net", "b@example.net"),
        )
        timings = dict(engine.evaluate(envelope, raw).timings)
        if shares is not None and "quota" in timings:
            shares.append((timings["quota"], timings["total"] - timings["quota"]))
    return (time.process_time() - started) * 1000 / len(corpus)


def run(quick: bool = False) -> dict[str, Any]:
    corpus = generate_corpus(60 if quick else 200, seed=7)
    repetitions = 3 if quick else 7
    base = load_config(None)
    kinds = ("none", "memory", "sqlite", "redis")
    with tempfile.TemporaryDirectory(prefix="menshen-bench-quota-") as tmp:
        directory = Path(tmp)
        server = RedisServer(directory / "redis")
        server.start()
        try:
            engines = {kind: _engine(base, kind, directory, server.url) for kind in kinds}
            for engine in engines.values():  # warm caches, tables and connections
                _cpu_ms_per_message(engine, corpus[:10], 10**6)
            samples: dict[str, list[float]] = {kind: [] for kind in kinds}
            stage: dict[str, list[tuple[float, float]]] = {kind: [] for kind in kinds}
            calls_before = _script_calls(server)
            for repetition in range(repetitions):
                for kind in kinds:  # interleaved, so drift hits every variant alike
                    offset = repetition * len(corpus) * 10
                    samples[kind].append(
                        _cpu_ms_per_message(engines[kind], corpus, offset, stage[kind])
                    )
            script_calls = _script_calls(server) - calls_before
        finally:
            server.stop()
    medians = {kind: statistics.median(values) for kind, values in samples.items()}
    none = medians["none"]
    return {
        "messages": len(corpus),
        "repetitions": repetitions,
        "rules": 3,
        "cpu_ms_per_msg": {kind: round(value, 4) for kind, value in medians.items()},
        "added_share": {
            kind: round((medians[kind] - none) / none, 4) for kind in kinds if kind != "none"
        },
        # The quota stage's own time against the rest of the same evaluations, summed over
        # every message: the cost itself, free of the drift between two whole runs.
        "stage_share": {
            kind: round(sum(q for q, _ in stage[kind]) / sum(r for _, r in stage[kind]), 4)
            for kind in kinds
            if kind != "none"
        },
        "redis_script_calls_per_msg": round(script_calls / (repetitions * len(corpus)), 3),
    }


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
