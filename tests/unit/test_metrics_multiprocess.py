"""Several worker processes, one merged view: the multiprocess mode the metrics are built for.

Each worker is a real Python process that sets PROMETHEUS_MULTIPROC_DIR before importing
menshen.metrics, builds its own Metrics and records one message; the serving side merges
the workers' files with exposition_registry().
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from menshen.metrics import exposition_registry, worker_exited

WORKER = """
import os
import sys
from prometheus_client import CollectorRegistry
from menshen.metrics import Metrics
from menshen.model import Action, Envelope, Verdict
metrics = Metrics(CollectorRegistry())
action = Action(sys.argv[1])
metrics.message(Envelope(), Verdict(action, None, "", timings=(("total", 0.01),)), 100)
metrics.connections_in_flight(2)
print(os.getpid())
"""


def test_workers_counts_merge_and_dead_workers_leave_the_live_gauges(tmp_path: Path) -> None:
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    pids = []
    for action in ("accept", "accept", "reject"):
        proc = subprocess.run(
            [sys.executable, "-c", WORKER, action],
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr.decode()
        pids.append(int(proc.stdout))
    registry = exposition_registry(tmp_path)

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("menshen_messages_total", action="accept", mode="enforce") == 2
    assert value("menshen_messages_total", action="reject", mode="enforce") == 1
    assert value("menshen_message_scan_seconds_count") == 3
    assert value("menshen_milter_connections_active") == 6
    for pid in pids:
        worker_exited(pid, tmp_path)
    assert value("menshen_milter_connections_active") in (None, 0)
    assert value("menshen_messages_total", action="accept", mode="enforce") == 2


FORKING = """
import os
import sys
from pathlib import Path
from prometheus_client import CollectorRegistry
from menshen.metrics import Metrics, enable_multiprocess
from menshen.model import Action, Envelope, Verdict
enable_multiprocess(Path(sys.argv[1]))
metrics = Metrics(CollectorRegistry())  # created before the fork, used on both sides
verdict = Verdict(Action.ACCEPT, None, "", timings=(("total", 0.01),))
metrics.message(Envelope(), verdict, 100)
child = os.fork()
if child == 0:
    metrics.message(Envelope(), verdict, 100)
    metrics.message(Envelope(), verdict, 100)
    os._exit(0)
_, status = os.waitpid(child, 0)
metrics.message(Envelope(), verdict, 100)
print(os.getpid(), child, status)
"""


def test_a_forked_worker_writes_its_own_files_and_the_parent_keeps_counting(
    tmp_path: Path,
) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", FORKING, str(tmp_path)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    parent, child, status = (int(word) for word in proc.stdout.split())
    assert status == 0
    assert (tmp_path / f"counter_{parent}.db").exists()
    assert (tmp_path / f"counter_{child}.db").exists()
    registry = exposition_registry(tmp_path)
    total = registry.get_sample_value(
        "menshen_messages_total", {"action": "accept", "mode": "enforce"}
    )
    assert total == 4  # 2 in the parent, 2 in the child: none counted twice or lost
    worker_exited(child, tmp_path)
    assert (
        registry.get_sample_value("menshen_messages_total", {"action": "accept", "mode": "enforce"})
        == 4
    )
