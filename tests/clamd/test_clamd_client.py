"""The clamd client against a real clamd (generated database) and against a fake clamd.

The promise under test: a scan ends CLEAN only when clamd said exactly `stream: OK`; a
detection names its signature; content clamd cannot judge is UNSCANNABLE; every fault of
the scanner (down, hung, reset, garbage) is ERROR, bounded in time, and never an exception.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import clamd_samples as samples
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from menshen import clamd as clamd_module
from menshen.clamd import ClamdClient, ClamdSettings, ScanOutcome, ScanResult

if TYPE_CHECKING:
    from conftest import ClamdServer, FakeClamd

    StartFake = Callable[..., FakeClamd]

# Tests that start the real clamd carry the suite's "integration" marker; the fake-clamd
# and parsing tests run anywhere.
real_clamd = pytest.mark.integration

INFECTED_SAMPLES: dict[str, Callable[[], bytes]] = {
    "eicar": samples.eicar,
    "zip": samples.eicar_zip,
    "zip_in_zip": samples.eicar_zip_in_zip,
    "tar_gz": samples.eicar_tar_gz,
    "mime_base64_attachment": samples.eicar_mime_base64,
    "attached_rfc822_message": samples.eicar_rfc822_attachment,
    "uuencoded_body": samples.eicar_uuencoded,
}

CLEAN_SAMPLES: dict[str, Callable[[], bytes]] = {
    "text": samples.clean_text,
    "random_bytes": lambda: samples.random_bytes(300_000),
    "zip": samples.clean_zip,
    "message_with_zip": samples.clean_message,
    "empty": lambda: b"",
}


def client(*addresses: str, **overrides: float | int | bool) -> ClamdClient:
    return ClamdClient(ClamdSettings(addresses=addresses, **overrides))  # type: ignore[arg-type]


def assert_eicar(result: ScanResult) -> None:
    assert result.outcome is ScanOutcome.INFECTED, result
    assert result.signature.startswith("Menshen.Test.EICAR."), result
    assert result.signature.endswith(".UNOFFICIAL"), result


def dead_unix_address(tmp_path: Path) -> str:
    return f"unix:{tmp_path}/no-such-clamd.sock"


def closed_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# -- real clamd: verdicts ----------------------------------------------------------------


# Both ways of handing clamd the data: a descriptor of an in-memory copy, or the stream.
TRANSPORTS = pytest.mark.parametrize("descriptor", [True, False], ids=["fildes", "instream"])


@real_clamd
@TRANSPORTS
@pytest.mark.parametrize("build", INFECTED_SAMPLES.values(), ids=INFECTED_SAMPLES.keys())
def test_eicar_in_every_wrapper_is_infected(
    clamd: ClamdServer, build: Callable[[], bytes], descriptor: bool
) -> None:
    result = client(clamd.address, pass_descriptor=descriptor).scan(build())
    assert_eicar(result)
    assert result.address == clamd.address


@real_clamd
@pytest.mark.parametrize(
    "build", [samples.marker, lambda: samples.zip_of("m.bin", samples.marker())]
)
def test_hash_signature_alone_detects_inside_archives(
    clamd: ClamdServer, build: Callable[[], bytes]
) -> None:
    result = client(clamd.address).scan(build())
    assert result.outcome is ScanOutcome.INFECTED, result
    assert result.signature == "Menshen.Test.Marker.MD5.UNOFFICIAL"


@real_clamd
@TRANSPORTS
@pytest.mark.parametrize("build", CLEAN_SAMPLES.values(), ids=CLEAN_SAMPLES.keys())
def test_clean_payloads_are_clean(
    clamd: ClamdServer, build: Callable[[], bytes], descriptor: bool
) -> None:
    result = client(clamd.address, pass_descriptor=descriptor).scan(build())
    assert result == ScanResult(ScanOutcome.CLEAN, address=clamd.address)


@real_clamd
def test_memoryview_slice_and_tiny_chunks(clamd: ClamdServer) -> None:
    # EICAR split across 7-byte chunks, handed over as a slice of a larger buffer.
    buffer = b"x" * 100 + samples.eicar() + b"y" * 100
    view = memoryview(buffer)[100 : 100 + len(samples.eicar())]
    assert_eicar(client(clamd.address, chunk_bytes=7).scan(view))


@real_clamd
def test_encrypted_zip_is_unscannable(clamd: ClamdServer) -> None:
    result = client(clamd.address).scan(samples.encrypted_zip())
    assert result.outcome is ScanOutcome.UNSCANNABLE, result
    assert result.detail == "encrypted"
    assert result.signature.startswith("Heuristics.Encrypted")


@real_clamd
def test_archive_deeper_than_max_recursion_is_unscannable(clamd: ClamdServer) -> None:
    result = client(clamd.address).scan(samples.nested_zip(20))
    assert result.outcome is ScanOutcome.UNSCANNABLE, result
    assert result.signature.startswith("Heuristics.Limits.Exceeded")


@real_clamd
def test_ping_and_version(clamd: ClamdServer, tmp_path: Path) -> None:
    scanner = client(clamd.address)
    assert scanner.ping() is True
    assert scanner.version().startswith("ClamAV 1.")
    dead = client(dead_unix_address(tmp_path))
    assert dead.ping() is False
    assert dead.version() == ""
    assert dead.ping(clamd.address) is True


# -- size limits ---------------------------------------------------------------------------


@real_clamd
def test_data_above_max_stream_bytes_is_unscannable_without_contacting_clamd(
    clamd: ClamdServer, fake_clamd: StartFake
) -> None:
    fake = fake_clamd("ok")
    scanner = client(fake.address, clamd.address, max_stream_bytes=1000)
    result = scanner.scan(samples.random_bytes(1001))
    assert result.outcome is ScanOutcome.UNSCANNABLE, result
    assert "too large to scan" in result.detail
    assert fake.connections == 0
    assert client(clamd.address, max_stream_bytes=1000).scan(
        samples.random_bytes(1000)
    ).outcome is (ScanOutcome.CLEAN)


@real_clamd
def test_clamd_stream_max_length_reply_is_unscannable(clamd: ClamdServer) -> None:
    # Our cap set above clamd's StreamMaxLength (25M): clamd answers "INSTREAM size limit
    # exceeded. ERROR" and closes mid-stream; the reply must still be read and understood.
    scanner = client(
        clamd.address, max_stream_bytes=40 * 1024 * 1024, chunk_bytes=1 << 20, pass_descriptor=False
    )
    result = scanner.scan(bytes(26 * 1024 * 1024))
    assert result.outcome is ScanOutcome.UNSCANNABLE, result
    assert "size limit exceeded" in result.detail
    assert scanner.ping()  # clamd is fine afterwards


@real_clamd
def test_a_passed_descriptor_is_scanned_whole_past_stream_max_length(clamd: ClamdServer) -> None:
    # StreamMaxLength bounds INSTREAM only: clamd reads a descriptor to its end, so EICAR
    # behind 26 MB is found instead of the message being unscannable.
    scanner = client(clamd.address, max_stream_bytes=40 * 1024 * 1024)
    assert_eicar(scanner.scan(bytes(26 * 1024 * 1024) + samples.eicar()))


# -- real clamd: faults and recovery -------------------------------------------------------


@real_clamd
def test_stopped_clamd_is_error_then_recovers(clamd: ClamdServer) -> None:
    scanner = client(clamd.address)
    assert_eicar(scanner.scan(samples.eicar()))
    clamd.stop()
    try:
        for payload in (samples.eicar(), samples.clean_text()):
            result = scanner.scan(payload)
            assert result.outcome is ScanOutcome.ERROR, result
            assert "connect failed" in result.detail
        assert scanner.ping() is False
    finally:
        clamd.start()
    assert_eicar(scanner.scan(samples.eicar()))
    assert scanner.scan(samples.clean_text()).outcome is ScanOutcome.CLEAN


@real_clamd
def test_hung_clamd_times_out_then_recovers(clamd: ClamdServer) -> None:
    scanner = client(clamd.address, read_timeout=1.0)
    clamd.pause()
    try:
        began = time.monotonic()
        result = scanner.scan(samples.eicar())
        elapsed = time.monotonic() - began
    finally:
        clamd.resume()
    assert result.outcome is ScanOutcome.ERROR, result
    assert "timed out" in result.detail
    assert 0.9 <= elapsed < 2.5
    assert_eicar(scanner.scan(samples.eicar()))


@real_clamd
def test_failover_dead_socket_then_real_clamd(clamd: ClamdServer, tmp_path: Path) -> None:
    scanner = client(
        dead_unix_address(tmp_path), f"tcp:127.0.0.1:{closed_tcp_port()}", clamd.address
    )
    result = scanner.scan(samples.eicar_zip())
    assert_eicar(result)
    assert result.address == clamd.address
    assert scanner.scan(samples.clean_zip()).outcome is ScanOutcome.CLEAN


@real_clamd
def test_failover_garbage_then_real_clamd(clamd: ClamdServer, fake_clamd: StartFake) -> None:
    garbage = fake_clamd("garbage")
    result = client(garbage.address, clamd.address).scan(samples.eicar())
    assert_eicar(result)
    assert garbage.connections == 1


@real_clamd
def test_first_definitive_answer_wins(clamd: ClamdServer, fake_clamd: StartFake) -> None:
    first = fake_clamd("found Other.Test.Sig")
    result = client(first.address, clamd.address).scan(samples.clean_text())
    assert result == ScanResult(ScanOutcome.INFECTED, "Other.Test.Sig", address=first.address)


def test_every_address_failing_is_error_listing_each(tmp_path: Path, fake_clamd: StartFake) -> None:
    dead = dead_unix_address(tmp_path)
    closing = fake_clamd("close")
    result = client(dead, closing.address).scan(samples.eicar())
    assert result.outcome is ScanOutcome.ERROR
    assert f"{dead}: connect failed" in result.detail
    assert f"{closing.address}: connection closed without a reply" in result.detail
    assert result.address == closing.address


@real_clamd
def test_one_client_shared_by_threads(clamd: ClamdServer) -> None:
    scanner = client(clamd.address)
    payloads = [samples.eicar_zip() if i % 2 else samples.clean_zip() for i in range(24)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(scanner.scan, payloads))
    for index, result in enumerate(results):
        expected = ScanOutcome.INFECTED if index % 2 else ScanOutcome.CLEAN
        assert result.outcome is expected, (index, result)


# -- fake clamd: faults ------------------------------------------------------------------


def test_hang_is_error_within_read_timeout(fake_clamd: StartFake) -> None:
    fake = fake_clamd("hang")
    scanner = client(fake.address, read_timeout=1.0)
    began = time.monotonic()
    result = scanner.scan(samples.eicar())
    elapsed = time.monotonic() - began
    assert result.outcome is ScanOutcome.ERROR, result
    assert "timed out waiting for the reply" in result.detail
    assert 0.9 <= elapsed < 2.5


def test_hang_while_sending_a_large_stream_is_bounded(fake_clamd: StartFake) -> None:
    # The fake never reads: sendall blocks once the socket buffers are full.
    fake = fake_clamd("hang")
    scanner = client(fake.address, read_timeout=1.0, pass_descriptor=False)
    began = time.monotonic()
    result = scanner.scan(samples.random_bytes(8 * 1024 * 1024))
    elapsed = time.monotonic() - began
    assert result.outcome is ScanOutcome.ERROR, result
    assert "timed out sending" in result.detail
    assert elapsed < 2.5


def test_hang_makes_ping_false_in_bounded_time(fake_clamd: StartFake) -> None:
    fake = fake_clamd("hang")
    began = time.monotonic()
    assert client(fake.address, read_timeout=0.5).ping() is False
    assert time.monotonic() - began < 2.0


def test_close_after_command_is_error(fake_clamd: StartFake) -> None:
    fake = fake_clamd("close")
    result = client(fake.address).scan(samples.eicar())
    assert result.outcome is ScanOutcome.ERROR, result


def test_garbage_reply_is_error(fake_clamd: StartFake) -> None:
    fake = fake_clamd("garbage")
    result = client(fake.address).scan(samples.clean_text())
    assert result.outcome is ScanOutcome.ERROR, result
    assert "garbled reply" in result.detail


@pytest.mark.parametrize("size", [16, 4 * 1024 * 1024], ids=["small", "larger_than_socket_buffer"])
def test_size_limit_reply_is_unscannable(fake_clamd: StartFake, size: int) -> None:
    fake = fake_clamd("size-limit")
    result = client(fake.address).scan(samples.random_bytes(size))
    assert result.outcome is ScanOutcome.UNSCANNABLE, result
    assert "size limit exceeded" in result.detail


def test_fake_ok_and_found_over_tcp(fake_clamd: StartFake) -> None:
    ok = fake_clamd("ok", tcp=True)
    found = fake_clamd("found Some.Sig-1", tcp=True)
    assert client(ok.address).scan(b"data").outcome is ScanOutcome.CLEAN
    assert client(ok.address).ping() is True
    assert client(found.address).scan(b"data").signature == "Some.Sig-1"


def test_the_descriptor_holds_exactly_the_data(fake_clamd: StartFake) -> None:
    fake = fake_clamd("found Some.Sig-1")
    payload = samples.random_bytes(200_000)
    result = client(fake.address).scan(memoryview(payload)[1000:])
    assert result.outcome is ScanOutcome.INFECTED
    assert result.signature == "Some.Sig-1"  # parsed from "fd[9]: Some.Sig-1 FOUND"
    assert fake.descriptors == [payload[1000:]]


def test_streaming_when_descriptors_are_off(fake_clamd: StartFake) -> None:
    fake = fake_clamd("ok")
    assert client(fake.address, pass_descriptor=False).scan(b"data").outcome is ScanOutcome.CLEAN
    assert fake.descriptors == []


def test_tcp_always_streams(fake_clamd: StartFake) -> None:
    fake = fake_clamd("ok", tcp=True)
    assert client(fake.address).scan(b"data").outcome is ScanOutcome.CLEAN
    assert fake.descriptors == []


def test_a_refused_descriptor_is_streamed_instead(fake_clamd: StartFake) -> None:
    fake = fake_clamd("refuse-descriptor")
    result = client(fake.address).scan(b"data")
    assert result.outcome is ScanOutcome.CLEAN, result
    assert fake.connections == 2  # FILDES refused, then INSTREAM


@pytest.mark.parametrize(
    "reply",
    [
        # What clamd answers when the kernel dropped the descriptor on the way (a security
        # module refusing it): the byte that carried it arrives alone.
        "No file descriptor received. ERROR",
        "fd[9]: lstat() failed: Permission denied. ERROR",
    ],
)
def test_a_refused_descriptor_reads_as_a_clamd_error_so_the_stream_is_tried(reply: str) -> None:
    result = clamd_module._classify(reply, "unix:/run/clamd.ctl")
    assert result.outcome is ScanOutcome.ERROR
    assert result.detail.startswith(clamd_module._CLAMD_ERROR)


def test_the_copy_handed_to_clamd_is_sealed() -> None:
    descriptor = clamd_module._scratch_copy(memoryview(b"scan me"))
    try:
        assert os.pread(descriptor, 100, 0) == b"scan me"
        with pytest.raises(PermissionError):
            os.write(descriptor, b"changed")
    finally:
        os.close(descriptor)


def test_refused_tcp_port_is_error() -> None:
    result = client(f"tcp:127.0.0.1:{closed_tcp_port()}").scan(b"data")
    assert result.outcome is ScanOutcome.ERROR
    assert "connect failed" in result.detail


STRICT_REPLIES = {
    "clamd_error": (b"stream: Can't allocate memory ERROR\0", ScanOutcome.ERROR),
    "empty_reply": (b"\0", ScanOutcome.ERROR),
    "no_terminator": (b"stream: OK", ScanOutcome.ERROR),
    "extra_reply": (b"stream: OK\0stream: OK\0", ScanOutcome.ERROR),
    "newline": (b"stream: OK\n\0", ScanOutcome.ERROR),
    "lower_case": (b"stream: ok\0", ScanOutcome.ERROR),
    "trailing_space": (b"stream: OK \0", ScanOutcome.ERROR),
    "found_without_name": (b"stream:  FOUND\0", ScanOutcome.ERROR),
    "found_name_with_control": (b"stream: Bad\x07Name FOUND\0", ScanOutcome.ERROR),
    "over_long": (b"stream: " + b"A" * 5000 + b" FOUND\0", ScanOutcome.ERROR),
    "unknown_command": (b"UNKNOWN COMMAND\0", ScanOutcome.ERROR),
    "limits_exceeded_found": (
        b"stream: Heuristics.Limits.Exceeded FOUND\0",
        ScanOutcome.UNSCANNABLE,
    ),
    "limits_exceeded_error": (b"stream: Limits Exceeded ERROR\0", ScanOutcome.UNSCANNABLE),
    "encrypted_pdf": (b"stream: Heuristics.Encrypted.PDF FOUND\0", ScanOutcome.UNSCANNABLE),
    "found": (b"stream: Win.Test.EICAR_HDB-1 FOUND\0", ScanOutcome.INFECTED),
    "ok": (b"stream: OK\0", ScanOutcome.CLEAN),
    "descriptor_ok": (b"fd[12]: OK\0", ScanOutcome.CLEAN),
    "descriptor_found": (b"fd[12]: Win.Test.EICAR_HDB-1 FOUND\0", ScanOutcome.INFECTED),
    "descriptor_without_number": (b"fd[]: OK\0", ScanOutcome.ERROR),
    "descriptor_not_a_number": (b"fd[x]: OK\0", ScanOutcome.ERROR),
    "no_subject": (b"OK\0", ScanOutcome.ERROR),
}


@pytest.mark.parametrize(("reply", "expected"), STRICT_REPLIES.values(), ids=STRICT_REPLIES.keys())
def test_replies_are_parsed_strictly(
    fake_clamd: StartFake, reply: bytes, expected: ScanOutcome
) -> None:
    fake = fake_clamd("raw", reply=reply)
    result = client(fake.address).scan(b"payload")
    assert result.outcome is expected, result


@pytest.mark.parametrize(
    "address",
    ["", "unix:", "unix:relative.sock", "tcp:localhost", "tcp:host:0", "tcp::3310", "inet:x:1"],
)
def test_malformed_address_is_refused_at_configuration(address: str) -> None:
    with pytest.raises(ValueError, match="clamd address"):
        ClamdSettings(addresses=(address,))


def test_no_address_is_error() -> None:
    assert client().scan(b"x").outcome is ScanOutcome.ERROR


# -- property: a broken clamd never yields CLEAN, and scan never raises ------------------


@pytest.fixture
def broken_fakes(fake_clamd: StartFake) -> tuple[FakeClamd, ...]:
    # Evaluated once per test, not per example: the fakes keep no per-scan state.
    return (fake_clamd("garbage"), fake_clamd("close"))


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(payload=st.binary(max_size=4096), chunk=st.integers(min_value=1, max_value=8192))
def test_broken_clamd_never_clean_never_raises(
    broken_fakes: tuple[FakeClamd, ...], payload: bytes, chunk: int
) -> None:
    for fake in broken_fakes:
        result = client(fake.address, read_timeout=2.0, chunk_bytes=chunk).scan(payload)
        assert result.outcome is ScanOutcome.ERROR, (fake.mode, result)
