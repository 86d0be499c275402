"""Send the install test's two messages through Postfix and check the replies.

Run inside the test chroot with Debian's /usr/bin/python3 (stdlib only):
    python3 smtp_roundtrip.py PORT
A clean message must be queued (250, its queue id printed as `clean-queued QUEUEID`); a
message whose body is in the shipped invoice_fraud list must be refused with a 5xx.
"""

from __future__ import annotations

import smtplib
import sys
from email.message import EmailMessage

CLEAN_BODY = "您好，附件是下周会议的议程，请查收。\nThe agenda for next week is attached.\n"
KEYWORD_BODY = "请联系我们代开发票\n"


def message(subject: str, body: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "sender@example.com"
    msg["To"] = "rcpt@example.net"
    msg["Subject"] = subject
    msg.set_content(body, charset="utf-8", cte="8bit")
    return msg.as_bytes()


def send(port: int, raw: bytes) -> tuple[int, str]:
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        client.ehlo("client.example.com")
        client.mail("sender@example.com", ["BODY=8BITMIME"])
        client.rcpt("rcpt@example.net")
        code, reply = client.data(raw)
        return code, reply.decode("utf-8", "replace")


def main() -> int:
    port = int(sys.argv[1])
    code, reply = send(port, message("meeting agenda", CLEAN_BODY))
    print(f"clean message:   {code} {reply}")
    if code != 250 or "queued as" not in reply:
        print("FAIL: the clean message was not queued")
        return 1
    print(f"clean-queued {reply.rsplit(' ', 1)[-1]}")
    code, reply = send(port, message("invoice", KEYWORD_BODY))
    print(f"keyword message: {code} {reply}")
    if not 500 <= code < 600 or "invoice_fraud" not in reply:
        print("FAIL: the keyword message was not refused with a 5xx naming invoice_fraud")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
