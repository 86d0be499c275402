"""Test samples for antivirus scanning, built at run time.

What: the EICAR anti-virus test string and the same string wrapped the ways mail carries
files (zip, zip in zip, tar.gz, base64 MIME attachment, attached message/rfc822, uuencoded
body), clean counterparts, a deeply nested archive, a zip with the "encrypted" flag, and a
marker blob that only the generated hash signature matches.

Why built at run time: the EICAR string is assembled from pieces so that no file in the
repository contains it; a scanner on a developer's machine or in a mirror must not flag or
quarantine the source tree. Every function returns fresh bytes and keeps no state.
"""

from __future__ import annotations

import binascii
import hashlib
import io
import struct
import tarfile
import zipfile
import zlib
from email import message_from_bytes, policy
from email.message import EmailMessage

SENDER = "alice@example.org"
RECIPIENT = "bob@example.net"


def eicar() -> bytes:
    """The 68-byte EICAR anti-virus test file."""
    head = "X5O!P%@AP[4" + "\\" + "PZX54(P^)7CC)7}$"
    name = "-".join(["EICAR", "STANDARD", "ANTIVIRUS", "TEST", "FILE"])
    tail = "!$" + "H+H*"
    return (head + name + tail).encode("ascii")


def marker() -> bytes:
    """A harmless blob matched only by the generated MD5 signature (Menshen.Test.Marker.MD5):
    it proves hash signatures work on their own, also inside archives."""
    seed = b"menshen clamd marker"
    return b"".join(hashlib.sha256(seed + bytes([i])).digest() for i in range(32))


def zip_of(name: str, data: bytes, *, compress: bool = True) -> bytes:
    """A zip archive holding one member."""
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def eicar_zip() -> bytes:
    return zip_of("eicar.com", eicar())


def eicar_zip_in_zip() -> bytes:
    return zip_of("inner.zip", eicar_zip())


def eicar_tar_gz() -> bytes:
    buffer = io.BytesIO()
    data = eicar()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("docs/eicar.com")
        info.size = len(data)
        info.mtime = 1_700_000_000
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _message(subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = RECIPIENT
    message["Subject"] = subject
    message["Message-ID"] = "<sample@example.org>"
    message.set_content(body)
    return message


def eicar_mime_base64() -> bytes:
    """A message with EICAR as a base64-encoded application/octet-stream attachment."""
    message = _message("invoice", "See the attached file.\n")
    message.add_attachment(
        eicar(), maintype="application", subtype="octet-stream", filename="invoice.com"
    )
    return message.as_bytes()


def eicar_rfc822_attachment() -> bytes:
    """A message forwarding, as an attached message/rfc822, a message that carries EICAR."""
    inner = message_from_bytes(eicar_mime_base64(), policy=policy.default)
    assert isinstance(inner, EmailMessage)
    outer = _message("Fwd: invoice", "Forwarded message attached.\n")
    outer.add_attachment(inner)  # an EmailMessage attaches as message/rfc822
    return outer.as_bytes()


def eicar_uuencoded() -> bytes:
    """A plain-text message whose body carries EICAR uuencoded (begin 644 ... end)."""
    data = eicar()
    lines = [b"begin 644 eicar.com"]
    for start in range(0, len(data), 45):
        lines.append(binascii.b2a_uu(data[start : start + 45], backtick=True).rstrip(b"\n"))
    lines += [b"`", b"end"]
    headers = (
        f"From: {SENDER}\r\nTo: {RECIPIENT}\r\nSubject: uuencoded\r\n"
        "Message-ID: <uu@example.org>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
    ).encode("ascii")
    return headers + b"Here it is:\r\n\r\n" + b"\r\n".join(lines) + b"\r\n"


def clean_text() -> bytes:
    return b"Quarterly report attached. Nothing to see here.\n" * 20


def clean_zip() -> bytes:
    return zip_of("report.txt", clean_text())


def clean_message() -> bytes:
    message = _message("report", "Please find the report attached.\n")
    message.add_attachment(clean_zip(), maintype="application", subtype="zip", filename="r.zip")
    return message.as_bytes()


def nested_zip(depth: int, data: bytes | None = None) -> bytes:
    """`data` (clean text by default) in `depth` levels of deflated zips: deeper than clamd's
    MaxRecursion (17 by default) it yields Heuristics.Limits.Exceeded with AlertExceedsMax."""
    payload = clean_text() if data is None else data
    for level in range(depth):
        payload = zip_of(f"level{level}.zip", payload)
    return payload


def encrypted_zip() -> bytes:
    """A zip whose single member has general-purpose flag bit 0 (encrypted) set.

    zipfile cannot write encrypted archives, so the structure is written by hand: a local
    header, a 12-byte "encryption header" and a fake payload (never decrypted by anyone: clamd
    with AlertEncryptedArchive reports Heuristics.Encrypted.Zip from the flag alone), the
    central directory entry and the end-of-central-directory record.
    """
    name = b"secret.txt"
    plain_size = 5
    payload = bytes(12) + b"not really ciphertext"
    crc = zlib.crc32(b"hello")
    flags = 0x0001
    local = (
        struct.pack(
            "<IHHHHHIIIHH",
            0x04034B50,  # local file header signature
            20,  # version needed
            flags,
            0,  # stored
            0,  # time
            0,  # date
            crc,
            len(payload),
            plain_size,
            len(name),
            0,  # extra length
        )
        + name
        + payload
    )
    central = (
        struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,  # central directory header signature
            20,  # version made by
            20,  # version needed
            flags,
            0,
            0,
            0,
            crc,
            len(payload),
            plain_size,
            len(name),
            0,  # extra length
            0,  # comment length
            0,  # disk number
            0,  # internal attributes
            0,  # external attributes
            0,  # offset of the local header
        )
        + name
    )
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(local), 0)
    return local + central + end


def random_bytes(size: int, seed: int = 1) -> bytes:
    """Deterministic pseudo-random bytes (no signature can match them by accident)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])
