"""An MTA-side milter protocol (version 6) client that talks to a filter the way Postfix does.

Contract:
- `MilterClient(endpoint, timeout=...)` connects to `unix:PATH` or `inet:PORT@HOST` (also
  `inet:HOST:PORT`) and negotiates at once (SMFIC_OPTNEG). It offers every action and every
  protocol flag Postfix 3.7 offers (version 6, actions 0x1ff, protocol 0x1fffff) and then
  HONOURS what the filter chose:
    * a step the filter marked SMFIP_NO* is not sent (its macros still are, as Postfix does);
    * after a step marked SMFIP_NR_* no reply is awaited;
    * header values keep their leading space only when SMFIP_HDR_LEADSPC was negotiated
      (otherwise one leading space is eaten, Sendmail style);
    * an SMFIR_SKIP reply to a body chunk ends the body (SMFIP_SKIP);
    * macro lists the filter asked for (SMFIR_SETSYMLIST in the negotiation reply) replace
      the defaults of that stage, and only macros with a known value are sent.
- Default macros, as Postfix sends them: `j`, `{daemon_name}`, `_` at connect; `i` and
  `{auth_authen}` (when given) at MAIL; `i` at RCPT, DATA, end of headers and end of message.
- Steps: `connect`, `helo`, `mail`, `rcpt`, `data`, `header` (one per header), `eoh`,
  `body` (chunks of at most 65535 bytes), `eom`, `abort`, `quit`. Each returns the filter's
  `Reply` (or None when no reply is due). `eom` collects modification requests
  (SMFIR_ADDHEADER, SMFIR_CHGHEADER, SMFIR_INSHEADER, SMFIR_QUARANTINE, recipient and
  sender changes, body replacement) and SMFIR_PROGRESS until a final reply (ACCEPT,
  CONTINUE, REJECT, TEMPFAIL, DISCARD, REPLYCODE) and returns a `MilterResult`.
- `send_message(raw, sender, rcpts, client_ip, helo, queue_id, auth=None)` runs one whole
  SMTP transaction (connect and helo only on the connection's first message), stops early
  when the filter decides before the end, ends with SMFIC_ABORT (Postfix resets the milter
  after every transaction) and returns a `MilterResult`. The raw RFC 5322 message is split
  into headers, each passed with its raw value after the colon (continuation lines joined
  by LF, as Postfix stores them) and a body whose line ends are CRLF.
Fails: `MilterProtocolError` for a malformed or unexpected reply, a reply packet longer
  than `max_packet` (1 MiB by default) or a connection closed early; `TimeoutError` when any
  socket operation exceeds `timeout`; OSError when the endpoint cannot be reached.
Thread safety: one client per thread (a milter connection is one SMTP session).
"""

from __future__ import annotations

import enum
import re
import socket
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from types import TracebackType

# --- protocol constants (libmilter's mfdef.h) ----------------------------------------------

VERSION = 6

# Commands, MTA -> filter.
SMFIC_ABORT = b"A"
SMFIC_BODY = b"B"
SMFIC_CONNECT = b"C"
SMFIC_MACRO = b"D"
SMFIC_BODYEOB = b"E"
SMFIC_HELO = b"H"
SMFIC_HEADER = b"L"
SMFIC_MAIL = b"M"
SMFIC_EOH = b"N"
SMFIC_OPTNEG = b"O"
SMFIC_QUIT = b"Q"
SMFIC_RCPT = b"R"
SMFIC_DATA = b"T"

# Actions the filter may request (the negotiation's second word).
SMFIF_ADDHDRS = 0x01
SMFIF_CHGBODY = 0x02
SMFIF_ADDRCPT = 0x04
SMFIF_DELRCPT = 0x08
SMFIF_CHGHDRS = 0x10
SMFIF_QUARANTINE = 0x20
SMFIF_CHGFROM = 0x40
SMFIF_ADDRCPT_PAR = 0x80
SMFIF_SETSYMLIST = 0x100
POSTFIX_ACTIONS = 0x1FF  # Postfix 3.7 offers all of the above

# Protocol flags (the negotiation's third word).
SMFIP_NOCONNECT = 0x1
SMFIP_NOHELO = 0x2
SMFIP_NOMAIL = 0x4
SMFIP_NORCPT = 0x8
SMFIP_NOBODY = 0x10
SMFIP_NOHDRS = 0x20
SMFIP_NOEOH = 0x40
SMFIP_NR_HDR = 0x80  # a.k.a. SMFIP_NOHREPL
SMFIP_NOUNKNOWN = 0x100
SMFIP_NODATA = 0x200
SMFIP_SKIP = 0x400
SMFIP_RCPT_REJ = 0x800
SMFIP_NR_CONN = 0x1000
SMFIP_NR_HELO = 0x2000
SMFIP_NR_MAIL = 0x4000
SMFIP_NR_RCPT = 0x8000
SMFIP_NR_DATA = 0x10000
SMFIP_NR_UNKN = 0x20000
SMFIP_NR_EOH = 0x40000
SMFIP_NR_BODY = 0x80000
SMFIP_HDR_LEADSPC = 0x100000
POSTFIX_PROTOCOL = 0x1FFFFF  # Postfix 3.7's MILTER8_V6_PROTO_MASK: every flag above

# Macro stages of SMFIR_SETSYMLIST (SMFIM_*), and the command each one precedes.
SMFIM_CONNECT, SMFIM_HELO, SMFIM_ENVFROM, SMFIM_ENVRCPT, SMFIM_DATA, SMFIM_EOM, SMFIM_EOH = range(7)
STAGE_COMMAND = {
    SMFIM_CONNECT: SMFIC_CONNECT,
    SMFIM_HELO: SMFIC_HELO,
    SMFIM_ENVFROM: SMFIC_MAIL,
    SMFIM_ENVRCPT: SMFIC_RCPT,
    SMFIM_DATA: SMFIC_DATA,
    SMFIM_EOM: SMFIC_BODYEOB,
    SMFIM_EOH: SMFIC_EOH,
}

BODY_CHUNK = 65535  # Postfix's MILTER_CHUNK_SIZE
DEFAULT_MAX_PACKET = 1024 * 1024
DEFAULT_TIMEOUT = 30.0


class Code(bytes, enum.Enum):
    """Reply codes, filter -> MTA."""

    ADDRCPT = b"+"
    DELRCPT = b"-"
    ADDRCPT_PAR = b"2"
    SHUTDOWN = b"4"
    ACCEPT = b"a"
    REPLBODY = b"b"
    CONTINUE = b"c"
    DISCARD = b"d"
    CHGFROM = b"e"
    CONN_FAIL = b"f"
    ADDHEADER = b"h"
    INSHEADER = b"i"
    SETSYMLIST = b"l"
    CHGHEADER = b"m"
    PROGRESS = b"p"
    QUARANTINE = b"q"
    REJECT = b"r"
    SKIP = b"s"
    TEMPFAIL = b"t"
    REPLYCODE = b"y"
    OPTNEG = b"O"


# A reply that ends the conversation about one step (what Postfix acts on).
FINAL = frozenset(
    {
        Code.ACCEPT,
        Code.CONTINUE,
        Code.REJECT,
        Code.TEMPFAIL,
        Code.DISCARD,
        Code.REPLYCODE,
        Code.SHUTDOWN,
        Code.CONN_FAIL,
        Code.SKIP,
    }
)
# Requests a filter may only make at end of message.
MODIFICATIONS = frozenset(
    {
        Code.ADDHEADER,
        Code.CHGHEADER,
        Code.INSHEADER,
        Code.QUARANTINE,
        Code.ADDRCPT,
        Code.ADDRCPT_PAR,
        Code.DELRCPT,
        Code.CHGFROM,
        Code.REPLBODY,
    }
)


class MilterProtocolError(Exception):
    """The filter broke the protocol (or went away mid-conversation)."""


@dataclass(frozen=True, slots=True)
class Reply:
    code: Code
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class Negotiated:
    version: int
    actions: int
    protocol: int
    macro_lists: Mapping[int, tuple[str, ...]]  # SMFIM_* stage -> macro names asked for

    def has(self, flag: int) -> bool:
        return bool(self.protocol & flag)


@dataclass(frozen=True, slots=True)
class SmtpReply:
    code: str  # "550"
    text: str  # "5.7.1 Message rejected ...", as sent (enhanced status code first)

    @property
    def enhanced(self) -> str:
        head = self.text.split(" ", 1)[0]
        return head if re.fullmatch(r"[245]\.\d{1,3}\.\d{1,3}", head) else ""

    def __str__(self) -> str:
        return f"{self.code} {self.text}"


@dataclass(frozen=True, slots=True)
class HeaderChange:
    """SMFIR_CHGHEADER (an empty value deletes) or SMFIR_INSHEADER (index 0 is the top)."""

    index: int
    name: str
    value: str


@dataclass(slots=True)
class MilterResult:
    action: Code  # the final reply of the step that decided
    stage: str  # "connect", "helo", "mail", "rcpt", "data", "header", "eoh", "body", "eom"
    reply: SmtpReply | None = None  # with REPLYCODE
    headers_added: list[tuple[str, str]] = field(default_factory=list)
    headers_changed: list[HeaderChange] = field(default_factory=list)
    headers_inserted: list[HeaderChange] = field(default_factory=list)
    quarantine: str | None = None
    modifications: list[Reply] = field(default_factory=list)  # every request, in order
    progress: int = 0  # SMFIR_PROGRESS packets seen at end of message

    def added(self, name: str) -> list[str]:
        """Values of the headers added under `name` (case-insensitive)."""
        return [v for n, v in self.headers_added if n.lower() == name.lower()]


@dataclass(frozen=True, slots=True)
class Endpoint:
    family: int
    address: str | tuple[str, int]


def parse_endpoint(spec: str) -> Endpoint:
    """`unix:PATH`, `inet:PORT@HOST` (libmilter's spelling) or `inet:HOST:PORT` (Postfix's)."""
    if spec.startswith(("unix:", "local:")):
        return Endpoint(socket.AF_UNIX, spec.split(":", 1)[1])
    for prefix, family in (("inet6:", socket.AF_INET6), ("inet:", socket.AF_INET)):
        if spec.startswith(prefix):
            rest = spec.removeprefix(prefix)
            if "@" in rest:
                port, host = rest.split("@", 1)
            elif rest.isdigit():
                port, host = rest, "127.0.0.1"
            else:
                host, port = rest.rsplit(":", 1)
            return Endpoint(family, (host.strip("[]"), int(port)))
    raise ValueError(f"{spec!r}: expected unix:PATH or inet:PORT@HOST")


# --- splitting a raw message as Postfix hands it to a milter --------------------------------


def split_message(raw: bytes) -> tuple[list[tuple[str, bytes]], bytes]:
    """Headers as (name, raw value after the colon) and the body with CRLF line ends.

    Nothing is unfolded: a folded header's value keeps its continuation lines, joined by LF
    as in Postfix's queue file. A line that is not a header ends the header block (Postfix
    treats it as the start of the body).
    """
    lines = raw.replace(b"\r\n", b"\n").split(b"\n")
    headers: list[tuple[str, bytes]] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if line == b"":
            index += 1  # the empty line between header and body is not sent
            break
        if line[:1] in (b" ", b"\t") and headers:
            name, value = headers[-1]
            headers[-1] = (name, value + b"\n" + line)
            index += 1
            continue
        match = re.match(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:", line)
        if match is None:
            break
        headers.append((match.group(1).decode("ascii"), line[match.end() :]))
        index += 1
    body_lines = lines[index:]
    if body_lines and body_lines[-1] == b"":
        body_lines = body_lines[:-1]  # the final line end, not an extra empty line
    body = b"".join(line + b"\r\n" for line in body_lines)
    return headers, body


# --- the client ------------------------------------------------------------------------------


class MilterClient:
    """One MTA-to-filter connection (Postfix opens one per SMTP session)."""

    def __init__(
        self,
        endpoint: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_packet: int = DEFAULT_MAX_PACKET,
        actions: int = POSTFIX_ACTIONS,
        protocol: int = POSTFIX_PROTOCOL,
        hostname: str = "mx.example.net",
    ) -> None:
        self.timeout = timeout
        self.max_packet = max_packet
        self.hostname = hostname
        self._connected = False  # SMFIC_CONNECT sent (send_message does it once)
        target = parse_endpoint(endpoint)
        self._sock = socket.socket(target.family, socket.SOCK_STREAM)
        try:
            self._sock.settimeout(timeout)  # every connect, send and recv below
            self._sock.connect(target.address)
            self.negotiated = self._negotiate(actions, protocol)
        except BaseException:
            self._sock.close()
            raise

    # --- context manager ---

    def __enter__(self) -> MilterClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()

    # --- framing ---

    def _send(self, command: bytes, data: bytes = b"") -> None:
        self._sock.sendall(struct.pack("!I", len(data) + 1) + command + data)

    def _recv_exact(self, size: int) -> bytes:
        chunks: list[bytes] = []
        left = size
        while left:
            chunk = self._sock.recv(min(left, 65536))
            if not chunk:
                raise MilterProtocolError(f"connection closed with {left} of {size} bytes due")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def read_reply(self) -> Reply:
        (length,) = struct.unpack("!I", self._recv_exact(4))
        if length < 1:
            raise MilterProtocolError("reply packet of length 0")
        if length > self.max_packet:
            raise MilterProtocolError(f"reply packet of {length} bytes (limit {self.max_packet})")
        packet = self._recv_exact(length)
        try:
            code = Code(packet[:1])
        except ValueError:
            raise MilterProtocolError(f"unknown reply code {packet[:1]!r}") from None
        return Reply(code, packet[1:])

    # --- negotiation ---

    def _negotiate(self, actions: int, protocol: int) -> Negotiated:
        self._send(SMFIC_OPTNEG, struct.pack("!III", VERSION, actions, protocol))
        reply = self.read_reply()
        if reply.code is not Code.OPTNEG or len(reply.data) < 12:
            raise MilterProtocolError(f"bad negotiation reply {reply!r}")
        version, their_actions, their_protocol = struct.unpack("!III", reply.data[:12])
        if version > VERSION or version < 2:
            raise MilterProtocolError(f"filter speaks protocol version {version}")
        if their_actions & ~actions:
            raise MilterProtocolError(f"filter wants actions {their_actions:#x} not offered")
        if their_protocol & ~protocol:
            raise MilterProtocolError(f"filter wants protocol flags {their_protocol:#x}")
        macro_lists: dict[int, tuple[str, ...]] = {}
        rest = reply.data[12:]
        while rest:  # SMFIR_SETSYMLIST entries: uint32 stage, "name name ..." NUL
            if len(rest) < 5 or b"\0" not in rest[4:]:
                raise MilterProtocolError(f"bad macro list in negotiation: {rest!r}")
            (stage,) = struct.unpack("!I", rest[:4])
            names, _, rest = rest[4:].partition(b"\0")
            if stage not in STAGE_COMMAND:
                raise MilterProtocolError(f"macro list for unknown stage {stage}")
            macro_lists[stage] = tuple(names.decode("ascii").split())
        return Negotiated(version, their_actions, their_protocol, macro_lists)

    # --- steps ---

    def _macros(self, stage: int, defaults: Mapping[str, str]) -> None:
        """Send the stage's macros ahead of its command, even when the command is skipped."""
        wanted = self.negotiated.macro_lists.get(stage)
        chosen = defaults if wanted is None else {n: defaults[n] for n in wanted if n in defaults}
        pairs = b"".join(
            name.encode("ascii") + b"\0" + value.encode("utf-8") + b"\0"
            for name, value in chosen.items()
            if value
        )
        if pairs:
            self._send(SMFIC_MACRO, STAGE_COMMAND[stage] + pairs)

    def _step(self, command: bytes, data: bytes, skip: int, no_reply: int) -> Reply | None:
        """One command: not sent when the filter opted out, not awaited when it said so."""
        if self.negotiated.has(skip):
            return None
        self._send(command, data)
        if no_reply and self.negotiated.has(no_reply):
            return None
        while True:
            reply = self.read_reply()
            if reply.code is Code.PROGRESS:
                continue  # "still working": Postfix restarts its timer and waits on
            if reply.code not in FINAL or (reply.code is Code.SKIP and command != SMFIC_BODY):
                raise MilterProtocolError(f"unexpected {reply!r} after {command!r}")
            return reply

    def connect(
        self,
        client_ip: str,
        client_name: str = "unknown",
        port: int = 25,
        macros: Mapping[str, str] | None = None,
    ) -> Reply | None:
        self._connected = True
        self._macros(
            SMFIM_CONNECT,
            {
                "j": self.hostname,
                "{daemon_name}": self.hostname,
                "_": f"{client_name} [{client_ip}]",
                **(macros or {}),
            },
        )
        family = b"6" if ":" in client_ip else b"4"
        data = (
            client_name.encode("utf-8")
            + b"\0"
            + family
            + struct.pack("!H", port)
            + client_ip.encode("ascii")
            + b"\0"
        )
        return self._step(SMFIC_CONNECT, data, SMFIP_NOCONNECT, SMFIP_NR_CONN)

    def helo(self, name: str) -> Reply | None:
        return self._step(SMFIC_HELO, name.encode("utf-8") + b"\0", SMFIP_NOHELO, SMFIP_NR_HELO)

    def mail(
        self,
        sender: str,
        params: Sequence[str] = (),
        queue_id: str = "",
        auth: str | None = None,
    ) -> Reply | None:
        self._macros(SMFIM_ENVFROM, {"i": queue_id, "{auth_authen}": auth or ""})
        return self._step(SMFIC_MAIL, _args(f"<{sender}>", params), SMFIP_NOMAIL, SMFIP_NR_MAIL)

    def rcpt(self, rcpt: str, params: Sequence[str] = (), queue_id: str = "") -> Reply | None:
        self._macros(SMFIM_ENVRCPT, {"i": queue_id})
        return self._step(SMFIC_RCPT, _args(f"<{rcpt}>", params), SMFIP_NORCPT, SMFIP_NR_RCPT)

    def data(self, queue_id: str = "") -> Reply | None:
        self._macros(SMFIM_DATA, {"i": queue_id})
        return self._step(SMFIC_DATA, b"", SMFIP_NODATA, SMFIP_NR_DATA)

    def header(self, name: str, value: bytes | str) -> Reply | None:
        """`value` is everything after the colon, as it appears in the message."""
        raw = value.encode("utf-8") if isinstance(value, str) else value
        if not self.negotiated.has(SMFIP_HDR_LEADSPC) and raw.startswith(b" "):
            raw = raw[1:]  # Sendmail compatibility: Postfix eats one space
        data = name.encode("ascii") + b"\0" + raw + b"\0"
        return self._step(SMFIC_HEADER, data, SMFIP_NOHDRS, SMFIP_NR_HDR)

    def eoh(self, queue_id: str = "") -> Reply | None:
        self._macros(SMFIM_EOH, {"i": queue_id})
        return self._step(SMFIC_EOH, b"", SMFIP_NOEOH, SMFIP_NR_EOH)

    def body(self, data: bytes) -> Reply | None:
        """Send `data` in chunks of at most 65535 bytes; the first non-CONTINUE reply ends it."""
        for start in range(0, len(data), BODY_CHUNK):
            reply = self._step(
                SMFIC_BODY, data[start : start + BODY_CHUNK], SMFIP_NOBODY, SMFIP_NR_BODY
            )
            if reply is not None and reply.code is not Code.CONTINUE:
                return reply
        return None

    def eom(self, queue_id: str = "") -> MilterResult:
        self._macros(SMFIM_EOM, {"i": queue_id})
        self._send(SMFIC_BODYEOB)
        result = MilterResult(action=Code.CONTINUE, stage="eom")
        while True:
            reply = self.read_reply()
            if reply.code is Code.PROGRESS:
                result.progress += 1
                continue
            if reply.code in MODIFICATIONS:
                _record(result, reply, self.negotiated.has(SMFIP_HDR_LEADSPC))
                continue
            if reply.code not in FINAL or reply.code is Code.SKIP:
                raise MilterProtocolError(f"unexpected {reply!r} at end of message")
            _finish(result, reply)
            return result

    def abort(self) -> None:
        """End the transaction (Postfix's RSET, and its reset after every message)."""
        self._send(SMFIC_ABORT)

    def quit(self) -> None:
        self._send(SMFIC_QUIT)
        self.close()

    # --- a whole transaction ---

    def send_message(
        self,
        raw: bytes,
        sender: str,
        rcpts: Iterable[str],
        client_ip: str = "192.0.2.10",
        helo: str = "client.example",
        queue_id: str = "",
        auth: str | None = None,
    ) -> MilterResult:
        if not self._connected:
            for stage, step in (
                ("connect", lambda: self.connect(client_ip)),
                ("helo", lambda: self.helo(helo)),
            ):
                reply = step()
                if reply is not None and reply.code is not Code.CONTINUE:
                    return _decided(reply, stage)
        headers, body = split_message(raw)
        steps: list[tuple[str, Callable[[], Reply | None]]] = [
            ("mail", lambda: self.mail(sender, queue_id=queue_id, auth=auth)),
            *(("rcpt", partial(self.rcpt, r, queue_id=queue_id)) for r in rcpts),
            ("data", lambda: self.data(queue_id)),
            *(("header", partial(self.header, n, v)) for n, v in headers),
            ("eoh", lambda: self.eoh(queue_id)),
            ("body", lambda: self.body(body)),
        ]
        result: MilterResult | None = None
        for stage, step in steps:
            reply = step()
            if reply is None or reply.code is Code.CONTINUE:
                continue
            if reply.code is not Code.SKIP:  # SKIP: the filter has seen enough of the body
                result = _decided(reply, stage)
            break
        if result is None:
            result = self.eom(queue_id)
        self.abort()  # as smtpd does when the transaction ends, whatever its outcome
        return result


def _args(first: str, params: Sequence[str]) -> bytes:
    return b"".join(arg.encode("utf-8") + b"\0" for arg in (first, *params))


def _strings(data: bytes, count: int) -> list[str]:
    parts = data.split(b"\0")
    if len(parts) != count + 1 or parts[-1] != b"":
        raise MilterProtocolError(f"expected {count} NUL-terminated strings in {data!r}")
    return [p.decode("utf-8", "surrogateescape") for p in parts[:-1]]


def _record(result: MilterResult, reply: Reply, leading_space: bool) -> None:
    """Keep the raw reply; present header values as a reader sees the field body.

    With SMFIP_HDR_LEADSPC the MTA writes "Name:" + value verbatim, so a well-behaved
    filter sends the space itself; it must be there, and is removed for presentation.
    """
    result.modifications.append(reply)
    if reply.code is Code.ADDHEADER:
        name, value = _strings(reply.data, 2)
        if leading_space:
            if not value.startswith((" ", "\t")):
                raise MilterProtocolError(f"header {name} would be written as {name}:{value}")
            value = value[1:]
        result.headers_added.append((name, value))
    elif reply.code in (Code.CHGHEADER, Code.INSHEADER):
        if len(reply.data) < 4:
            raise MilterProtocolError(f"short header change {reply!r}")
        (index,) = struct.unpack("!I", reply.data[:4])
        name, value = _strings(reply.data[4:], 2)
        if leading_space and value.startswith(" "):
            value = value[1:]
        target = result.headers_changed if reply.code is Code.CHGHEADER else result.headers_inserted
        target.append(HeaderChange(index, name, value))
    elif reply.code is Code.QUARANTINE:
        (result.quarantine,) = _strings(reply.data, 1)


def _finish(result: MilterResult, reply: Reply) -> None:
    result.action = reply.code
    if reply.code is Code.REPLYCODE:
        (text,) = _strings(reply.data, 1)
        # "550 5.7.1 text", or the first line of a multi-line "550-5.7.1 text\r\n550 ...".
        if not re.match(r"[45]\d\d[ -]", text):
            raise MilterProtocolError(f"malformed SMTP reply {text!r}")
        result.reply = SmtpReply(text[:3], text[4:])
    elif reply.data:
        raise MilterProtocolError(f"{reply.code.name} with data {reply.data!r}")


def _decided(reply: Reply, stage: str) -> MilterResult:
    result = MilterResult(action=reply.code, stage=stage)
    _finish(result, reply)
    return result
