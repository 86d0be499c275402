"""Through a real Postfix, with a real clamd: malware is refused, and nothing is accepted
unscanned when clamd is gone.

The private Postfix, menshen and clamd all run on loopback (tests/integration/conftest.py,
tests/conftest.py). EICAR is assembled at run time (tests/support/clamd_samples.py).
"""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest
import yaml
from clamd_rig import ClamdServer
from clamd_samples import eicar_tar_gz, eicar_zip_in_zip
from postfix_rig import PostfixRig

pytestmark = pytest.mark.integration


def _message(subject: str, attachment: bytes, filename: str) -> bytes:
    message = EmailMessage()
    message["From"] = "alice@sender.test"
    message["To"] = "bob@example.com"
    message["Subject"] = subject
    message.set_content("Please see the attached file.\n")
    message.add_attachment(
        attachment, maintype="application", subtype="octet-stream", filename=filename
    )
    return message.as_bytes()


def _with_antivirus(config: Path, clamd: ClamdServer) -> Path:
    settings = yaml.safe_load(config.read_text(encoding="utf-8"))
    settings["antivirus"] = {"enabled": True, "clamd": [clamd.address], "read_timeout_seconds": 5}
    config.write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    return config


@pytest.mark.parametrize(
    ("wrapper", "build", "filename"),
    [
        ("zip in a zip", eicar_zip_in_zip, "report.zip"),
        ("tar.gz", eicar_tar_gz, "backup.tar.gz"),
    ],
)
def test_virus_is_refused_with_554_and_nothing_delivered(
    postfix: PostfixRig,
    menshen_daemon: Callable[..., object],
    menshen_config: Path,
    clamd: ClamdServer,
    wrapper: str,
    build: Callable[[], bytes],
    filename: str,
) -> None:
    menshen_daemon(config=_with_antivirus(menshen_config, clamd))
    code, text = postfix.send(_message(f"quarterly {wrapper}", build(), filename))
    assert code == 554, text
    assert text.startswith("5.7.1 Virus found: Menshen.Test.EICAR"), text
    assert postfix.delivered() == []


def test_clean_attachment_is_scanned_and_delivered(
    postfix: PostfixRig,
    menshen_daemon: Callable[..., object],
    menshen_config: Path,
    clamd: ClamdServer,
) -> None:
    menshen_daemon(config=_with_antivirus(menshen_config, clamd))
    code, text = postfix.send(_message("figures", b"col1,col2\n1,2\n", "figures.csv"))
    assert code == 250, text
    assert len(postfix.delivered(expect=1)) == 1


def test_clamd_down_means_4xx_never_unscanned_mail(
    postfix: PostfixRig,
    menshen_daemon: Callable[..., object],
    menshen_config: Path,
    clamd: ClamdServer,
) -> None:
    menshen_daemon(config=_with_antivirus(menshen_config, clamd))
    message = _message("figures", b"col1,col2\n1,2\n", "figures.csv")
    clamd.stop()
    try:
        code, text = postfix.send(message)
        assert code == 451, text
        assert "4.7.1 Virus scanner unavailable" in text
        assert postfix.delivered() == []
    finally:
        clamd.start()
    code, text = postfix.send(message)  # clamd back: the same message now goes through
    assert code == 250, text
    assert len(postfix.delivered(expect=1)) == 1


def test_blocked_attachment_is_refused_without_clamd(
    postfix: PostfixRig, menshen_daemon: Callable[..., object]
) -> None:
    menshen_daemon()
    code, text = postfix.send(_message("invoice", b"MZ\x90\x00 program", "invoice.pdf.exe"))
    assert code == 550, text
    assert "Attachment refused by policy" in text
    assert postfix.delivered() == []
