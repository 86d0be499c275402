"""menshen.yml: the schema, its defaults and its validation.

In:  a path to a YAML file (or none: the complete, commented default shipped in the package).
Out: a frozen `Config` tree. Every key has a documented default in defaults/menshen.yml; a
     key absent from the operator's file takes the same default.
Fails: `ConfigError` carrying EVERY problem found, each as `file:line: key.path: what`,
       for syntax errors, unknown keys, wrong types and out-of-range values. Nothing is
       half-loaded: either a whole Config comes back or an error does.
Thread safety: loading is stateless; the returned Config is immutable.
"""

from __future__ import annotations

import difflib
import enum
import importlib.resources
import ipaddress
import os
import re
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from menshen.model import Action, ExtractionLimits, SmtpReply
from menshen.yamlsource import LocatedList, LocatedMap, YamlSyntaxError, load_located_yaml

SYSTEM_CONFIG = Path("/etc/menshen/menshen.yml")
DEFAULT_SOCKET = "unix:/var/spool/postfix/menshen/menshen.sock"
DEFAULT_CLAMD = "unix:/var/run/clamav/clamd.ctl"  # Debian's clamav-daemon
CLAMD_ADDRESS = re.compile(r"^(unix:/\S+|tcp:[^\s:]+:\d{1,5})$")
SOCKET_SPEC = re.compile(r"^(unix:/\S+|inet6?:\d{1,5}(@\S+)?)$")
BUILTIN_CONFIG_NAME = "<builtin>/menshen.yml"
SYSLOG_FACILITIES = frozenset({"mail", "daemon", "user", *(f"local{n}" for n in range(8))})

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(Exception):
    """The configuration cannot be used. `problems` lists every reason, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class Mode(enum.Enum):
    ENFORCE = "enforce"  # verdicts are carried out
    MONITOR = "monitor"  # verdicts are computed, logged and counted; mail is accepted


class KeywordAction(enum.Enum):
    """What a keyword hit in a category does on its own (before scoring)."""

    REJECT = "reject"
    QUARANTINE = "quarantine"
    TAG = "tag"  # accept, add a header naming the category
    LOG = "log"  # accept; the finding is only logged and counted (and scored)


@dataclass(frozen=True, slots=True)
class CategoryRule:
    action: KeywordAction
    weight: float


@dataclass(frozen=True, slots=True)
class WordlistConfig:
    directory: Path | None  # None: the lists shipped with menshen
    default_rule: CategoryRule  # for categories that have a file but no entry below
    categories: Mapping[str, CategoryRule]
    max_hits: int  # hits counted per message before matching stops

    def rule_for(self, category: str) -> CategoryRule:
        return self.categories.get(category, self.default_rule)


# The categories of the lists shipped with menshen, when the file names none. A file that
# has `wordlists.categories` replaces this table as a whole.
DEFAULT_CATEGORIES: Mapping[str, CategoryRule] = MappingProxyType(
    {
        "invoice_fraud": CategoryRule(KeywordAction.REJECT, 10.0),
        "gambling": CategoryRule(KeywordAction.REJECT, 10.0),
        "pharma_spam": CategoryRule(KeywordAction.REJECT, 10.0),
        "phishing": CategoryRule(KeywordAction.QUARANTINE, 5.0),
        "confidential": CategoryRule(KeywordAction.QUARANTINE, 5.0),
    }
)


@dataclass(frozen=True, slots=True)
class ScoringConfig:
    """Sum of the weights of the distinct terms hit; None disables a threshold."""

    tag_at: float | None
    quarantine_at: float | None
    reject_at: float | None


@dataclass(frozen=True, slots=True)
class AddressList:
    senders: frozenset[str] = frozenset()  # lower-cased envelope addresses
    recipients: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()  # "example.com" exact, ".example.com" subdomains
    networks: tuple[IPNetwork, ...] = ()

    def is_empty(self) -> bool:
        return not (self.senders or self.recipients or self.domains or self.networks)


@dataclass(frozen=True, slots=True)
class RepliesConfig:
    reject: SmtpReply
    tempfail: SmtpReply
    denied: SmtpReply


@dataclass(frozen=True, slots=True)
class HeadersConfig:
    verdict: str  # header naming menshen's verdict on accepted and quarantined mail
    tag: str  # header naming the categories of TAG hits
    reason: str = "X-Menshen-Reason"  # why a message was quarantined (the hold queue's record)
    quota: str = "X-Menshen-Quota"  # a quota past its warning level


@dataclass(frozen=True, slots=True)
class CodeRule:
    """What a finding code does: its action and, optionally, its own SMTP reply."""

    action: Action
    reply: SmtpReply | None = None  # replaces replies.reject / replies.tempfail for this code


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """Everything `policy.decide` needs; nothing else."""

    mode: Mode
    wordlists: WordlistConfig
    scoring: ScoringConfig
    on_limits: Action  # MIME too deep, too many parts, too big, deadline: a retry fails again
    allow: AddressList
    deny: AddressList
    replies: RepliesConfig
    headers: HeadersConfig
    # Finding codes of the antivirus and attachment scanners -> what they do.
    rules: Mapping[str, CodeRule] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class AntivirusConfig:
    enabled: bool
    clamd: tuple[str, ...]  # unix:/path or tcp:host:port, tried in order
    connect_timeout: float
    read_timeout: float
    max_scan_bytes: int  # larger mail is not sent: AV_UNSCANNABLE (keep < StreamMaxLength)
    skip_authenticated: bool
    skip_above_bytes: int | None  # larger mail is not scanned, only marked (AV_SKIPPED)
    pass_descriptor: bool = True  # unix: clamd gets a descriptor (FILDES), not a stream


@dataclass(frozen=True, slots=True)
class AttachmentsConfig:
    enabled: bool
    blocked_extensions: frozenset[str] | None  # None: the scanner's default list
    inspect_archives: bool
    max_archive_entries: int


# attachments.actions key -> finding code, with the default action.
ATTACHMENT_ACTIONS: Mapping[str, tuple[str, Action]] = MappingProxyType(
    {
        "blocked_extension": ("ATTACHMENT_BLOCKED_EXTENSION", Action.REJECT),
        "double_extension": ("ATTACHMENT_DOUBLE_EXTENSION", Action.REJECT),
        "name_characters": ("ATTACHMENT_NAME_CHARACTERS", Action.QUARANTINE),
        "type_mismatch": ("ATTACHMENT_TYPE_MISMATCH", Action.QUARANTINE),
        "archive_blocked_name": ("ATTACHMENT_ARCHIVE_BLOCKED_NAME", Action.REJECT),
        "archive_too_many_entries": ("ATTACHMENT_ARCHIVE_TOO_MANY_ENTRIES", Action.QUARANTINE),
        "archive_unreadable": ("ATTACHMENT_ARCHIVE_UNREADABLE", Action.ACCEPT),
        "encrypted_archive": ("ATTACHMENT_ENCRYPTED_ARCHIVE", Action.QUARANTINE),
    }
)


@dataclass(frozen=True, slots=True)
class MilterConfig:
    """How the daemon meets Postfix."""

    socket: str  # "unix:/path" or "inet:PORT@HOST"
    socket_group: str  # group of a unix socket when that group exists (Postfix's smtpd)
    pid_file: Path | None
    timeout_seconds: int  # libmilter's I/O timeout towards the MTA
    spool_memory_bytes: int  # a message larger than this is spooled to a temporary file
    spool_directory: Path | None  # None: the system's temporary directory
    drain_seconds: float  # on SIGTERM, how long in-flight connections may take to finish
    workers: int = 0  # processes serving the socket; 0: one per core
    user: str = "menshen"  # started as root: the user to become once the socket is open

    def worker_count(self) -> int:
        return self.workers or max(1, os.cpu_count() or 1)


class AuditTarget(enum.Enum):
    NONE = "none"  # no audit trail
    FILE = "file"  # JSON lines appended to audit.file (reopened after logrotate moves it)
    SYSLOG = "syslog"  # one syslog message per line (journald takes /dev/log)


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """The Prometheus endpoint of `menshen serve` (and where `menshen stats` reads it)."""

    enabled: bool = True
    address: str = "127.0.0.1"
    port: int = 9640
    # Rejections + tempfails per client address over a sliding window (clientrates.py).
    client_failure_window_seconds: float = 300.0
    client_failure_ratio: float = 0.30
    client_failure_min_messages: int = 10


@dataclass(frozen=True, slots=True)
class AuditConfig:
    """One JSON line per message: where it goes and what it may contain."""

    target: AuditTarget = AuditTarget.NONE
    file: Path = Path("/var/log/menshen/audit.log")
    syslog_facility: str = "mail"
    hash_addresses: bool = False  # sender, SASL user and client IP as keyed hashes
    hash_key_file: Path | None = None  # the key of those hashes (required when hashing)
    include_terms: bool = False  # the matched wordlist terms themselves


@dataclass(frozen=True, slots=True)
class QuarantineConfig:
    """Which Postfix instance's hold queue `menshen quarantine` works on."""

    postfix_config_directory: Path | None = None  # None: Postfix's default (/etc/postfix)


class QuotaKey(enum.Enum):
    """Who a quota counts."""

    ACCOUNT = "account"  # the SASL login when authenticated, else the envelope sender
    SASL_USER = "sasl_user"  # authenticated mail only
    SENDER = "sender"  # the envelope sender (MAIL FROM)
    SENDER_DOMAIN = "sender_domain"
    CLIENT_IP = "client_ip"  # the client address, grouped by ipv4_prefix / ipv6_prefix


class QuotaCount(enum.Enum):
    MESSAGES = "messages"
    RECIPIENTS = "recipients"


class CalendarPeriod(enum.Enum):
    DAY = "day"
    WEEK = "week"  # ISO weeks, starting on Monday
    MONTH = "month"


class NullSender(enum.Enum):
    """What address-keyed quotas do with the null sender (bounces, <>)."""

    SKIP = "skip"  # bounces are never held back by a sender quota (RFC 5321 6.1)
    COUNT = "count"  # counted under the identity "<>"


class QuotaStoreKind(enum.Enum):
    MEMORY = "memory"  # this process only; lost on restart (tests, single process)
    SQLITE = "sqlite"  # the embedded default: one host, survives restarts
    REDIS = "redis"  # shared by a fleet of MTAs


class StoreFailure(enum.Enum):
    """What happens while the shared store (Redis) cannot be reached."""

    LOCAL = "local"  # count in the local store meanwhile, and say so (metric, log)
    ACCEPT = "accept"  # do not count or limit
    TEMPFAIL = "tempfail"  # refuse mail with a 4xx until the store is back


@dataclass(frozen=True, slots=True)
class QuotaWindow:
    """A calendar period in the configured time zone, or a rolling number of seconds."""

    calendar: CalendarPeriod | None = None
    seconds: int = 0  # rolling windows only

    def describe(self) -> str:
        if self.calendar is not None:
            return f"per {self.calendar.value}"
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if self.seconds % size == 0:
                return f"per {self.seconds // size}{unit} (rolling)"
        return f"per {self.seconds}s (rolling)"


@dataclass(frozen=True, slots=True)
class QuotaRule:
    name: str
    key: QuotaKey
    count: QuotaCount
    limit: int
    window: QuotaWindow
    warn_at: float | None  # fraction of the limit; None: no warning
    overrides: Mapping[str, int | None] = field(  # identity -> limit (None: unlimited)
        default_factory=lambda: MappingProxyType({})
    )
    exempt: frozenset[str] = frozenset()  # identities never counted
    exempt_networks: tuple[IPNetwork, ...] = ()  # client networks never counted
    ipv4_prefix: int = 32
    ipv6_prefix: int = 64


@dataclass(frozen=True, slots=True)
class QuotaStoreConfig:
    kind: QuotaStoreKind = QuotaStoreKind.SQLITE
    path: Path = Path("/var/lib/menshen/quotas.sqlite3")
    redis_url: str = "redis://127.0.0.1:6379/0"
    timeout_seconds: float = 0.5
    key_prefix: str = "menshen:quota:"
    on_error: StoreFailure = StoreFailure.LOCAL
    retry_seconds: float = 10.0  # after a failure, the shared store is tried again this late


@dataclass(frozen=True, slots=True)
class QuotaConfig:
    enabled: bool = False
    zone: tzinfo = UTC  # calendar windows reset at midnight here
    zone_name: str = "UTC"
    null_sender: NullSender = NullSender.SKIP
    check_at_rcpt: bool = True  # refuse at RCPT when a quota is already used up
    rules: tuple[QuotaRule, ...] = ()
    store: QuotaStoreConfig = field(default_factory=QuotaStoreConfig)


@dataclass(frozen=True, slots=True)
class Config:
    source: str  # the file this came from, for messages
    limits: ExtractionLimits
    policy: PolicyConfig
    milter: MilterConfig
    antivirus: AntivirusConfig
    attachments: AttachmentsConfig
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    quarantine: QuarantineConfig = field(default_factory=QuarantineConfig)
    quotas: QuotaConfig = field(default_factory=QuotaConfig)


def builtin_config_text() -> str:
    """The complete, commented default configuration shipped in the package."""
    resource = importlib.resources.files("menshen") / "defaults" / "menshen.yml"
    return resource.read_text(encoding="utf-8")


def config_path(explicit: str | None) -> Path | None:
    """Which file to read: -c, then $MENSHEN_CONFIG, then /etc/menshen/menshen.yml if present.

    None means the built-in default.
    """
    if explicit:
        return Path(explicit)
    from_env = os.environ.get("MENSHEN_CONFIG")
    if from_env:
        return Path(from_env)
    if SYSTEM_CONFIG.exists():
        return SYSTEM_CONFIG
    return None


def load_config(path: Path | None) -> Config:
    """Read and validate a config file (None: the built-in default). Raises ConfigError."""
    if path is None:
        return parse_config(builtin_config_text(), BUILTIN_CONFIG_NAME, base_dir=None)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text (byte {exc.start})"]) from None
    return parse_config(text, str(path), base_dir=path.parent)


def parse_config(text: str, source: str, base_dir: Path | None) -> Config:
    """Validate YAML text. Relative paths in it are resolved against base_dir."""
    try:
        document = load_located_yaml(text, source)
    except YamlSyntaxError as exc:
        raise ConfigError([str(exc)]) from None
    if document is None:
        document = LocatedMap()
        document.line, document.key_lines = 1, {}
    reader = _Reader(source, base_dir)
    config = reader.config(document)
    if reader.problems or config is None:
        raise ConfigError(reader.problems)
    return config


# --- validation -------------------------------------------------------------------------

_T = TypeVar("_T")
_E = TypeVar("_E", bound=enum.Enum)
_REPLY = re.compile(r"^([245]\d\d) ([245]\.\d{1,3}\.\d{1,3}) (\S[^\r\n]*)$")
_HEADER_NAME = re.compile(r"^[!-9;-~]{1,76}$")  # RFC 5322 ftext, kept short


class _Reader:
    """Walks the located YAML tree, building typed values and collecting every problem."""

    def __init__(self, source: str, base_dir: Path | None) -> None:
        self.source = source
        self.base_dir = base_dir
        self._problems: list[tuple[int, str]] = []

    def problem(self, line: int, path: str, message: str) -> None:
        self._problems.append((line, f"{self.source}:{line}: {path}: {message}"))

    @property
    def problems(self) -> list[str]:
        """Every problem found so far, in file order."""
        return [text for _, text in sorted(self._problems, key=lambda item: item[0])]

    # Generic accessors. `section` is the mapping, `path` its dotted name.

    def section(self, parent: LocatedMap, key: str, path: str, allowed: set[str]) -> LocatedMap:
        value = parent.get(key)
        line = parent.key_lines.get(key, parent.line)
        full = f"{path}.{key}" if path else key
        if value is None:
            empty = LocatedMap()
            empty.line, empty.key_lines = line, {}
            return empty
        if not isinstance(value, LocatedMap):
            self.problem(line, full, f"expected a mapping, got {_kind(value)}")
            empty = LocatedMap()
            empty.line, empty.key_lines = line, {}
            return empty
        self.unknown_keys(value, full, allowed)
        return value

    def unknown_keys(self, mapping: LocatedMap, path: str, allowed: set[str]) -> None:
        for key in mapping:
            if key not in allowed:
                where = f"{path}.{key}" if path else key
                hint = _closest(key, allowed)
                self.problem(
                    mapping.key_lines[key],
                    where,
                    "unknown key" + (f" (did you mean {hint!r}?)" if hint else ""),
                )

    def value(
        self,
        mapping: LocatedMap,
        key: str,
        path: str,
        default: _T,
        convert: Callable[[Any], _T],
        expected: str,
    ) -> _T:
        if key not in mapping:
            return default
        raw = mapping[key]
        try:
            return convert(raw)
        except (TypeError, ValueError) as exc:
            detail = f": {exc}" if str(exc) else ""
            self.problem(
                mapping.key_lines[key],
                f"{path}.{key}" if path else key,
                f"expected {expected}, got {_show(raw)}{detail}",
            )
            return default

    def integer(self, mapping: LocatedMap, key: str, path: str, default: int, minimum: int) -> int:
        def convert(raw: Any) -> int:
            if isinstance(raw, bool) or not isinstance(raw, int) or raw < minimum:
                raise ValueError("")
            return raw

        return self.value(mapping, key, path, default, convert, f"an integer >= {minimum}")

    def number(
        self, mapping: LocatedMap, key: str, path: str, default: float, minimum: float
    ) -> float:
        def convert(raw: Any) -> float:
            if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < minimum:
                raise ValueError("")
            return float(raw)

        return self.value(mapping, key, path, default, convert, f"a number >= {minimum}")

    def optional_number(
        self, mapping: LocatedMap, key: str, path: str, default: float | None
    ) -> float | None:
        def convert(raw: Any) -> float | None:
            if raw is None:
                return None
            if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
                raise ValueError("")
            return float(raw)

        return self.value(mapping, key, path, default, convert, "a number >= 0 or null")

    def choice(
        self, mapping: LocatedMap, key: str, path: str, default: _E, enum_type: type[_E]
    ) -> _E:
        names = [str(member.value) for member in enum_type]

        def convert(raw: Any) -> _E:
            try:
                return enum_type(raw)
            except ValueError:
                raise ValueError("") from None

        return self.value(mapping, key, path, default, convert, "one of " + ", ".join(names))

    def strings(self, mapping: LocatedMap, key: str, path: str) -> list[tuple[str, int]]:
        """A list of non-empty strings, each with its line."""
        if key not in mapping or mapping[key] is None:
            return []
        raw = mapping[key]
        full = f"{path}.{key}"
        if not isinstance(raw, LocatedList):
            self.problem(mapping.key_lines[key], full, f"expected a list, got {_kind(raw)}")
            return []
        items: list[tuple[str, int]] = []
        for index, (item, line) in enumerate(zip(raw, raw.item_lines, strict=True)):
            if not isinstance(item, str) or not item.strip():
                self.problem(line, f"{full}[{index}]", f"expected a string, got {_show(item)}")
                continue
            items.append((item.strip(), line))
        return items

    # Sections.

    def config(self, root: Any) -> Config | None:
        if not isinstance(root, LocatedMap):
            self.problem(1, "(top level)", f"expected a mapping of sections, got {_kind(root)}")
            return None
        self.unknown_keys(
            root,
            "",
            {
                "mode",
                "milter",
                "antivirus",
                "attachments",
                "limits",
                "wordlists",
                "scoring",
                "actions",
                "replies",
                "headers",
                "lists",
                "metrics",
                "audit",
                "quarantine",
                "quotas",
            },
        )
        mode = self.choice(root, "mode", "", Mode.ENFORCE, Mode)
        limits = self.limits(root)
        wordlists = self.wordlists(root)
        scoring = self.scoring(root)
        actions = self.section(root, "actions", "", {"on_limits"})
        on_limits = self.choice(actions, "on_limits", "actions", Action.QUARANTINE, Action)
        replies = self.replies(root)
        headers = self.headers(root)
        lists = self.section(root, "lists", "", {"allow", "deny"})
        allow = self.address_list(lists, "allow")
        deny = self.address_list(lists, "deny")
        rules: dict[str, CodeRule] = {}
        antivirus = self.antivirus(root, rules)
        attachments = self.attachments(root, rules)
        quotas = self.quotas(root, rules)
        policy = PolicyConfig(
            mode=mode,
            wordlists=wordlists,
            scoring=scoring,
            on_limits=on_limits,
            allow=allow,
            deny=deny,
            replies=replies,
            headers=headers,
            rules=MappingProxyType(rules),
        )
        return Config(
            source=self.source,
            limits=limits,
            policy=policy,
            milter=self.milter(root),
            antivirus=antivirus,
            attachments=attachments,
            metrics=self.metrics(root),
            audit=self.audit(root),
            quarantine=self.quarantine(root),
            quotas=quotas,
        )

    def boolean(self, mapping: LocatedMap, key: str, path: str, default: bool) -> bool:
        def convert(raw: Any) -> bool:
            if not isinstance(raw, bool):
                raise ValueError("")
            return raw

        return self.value(mapping, key, path, default, convert, "true or false")

    def reply(
        self, mapping: LocatedMap, key: str, path: str, default: str, klass: str
    ) -> SmtpReply:
        def convert(raw: Any) -> SmtpReply:
            match = _REPLY.match(raw) if isinstance(raw, str) else None
            if not match or match[1][0] != klass or match[2][0] != klass:
                raise ValueError("")
            return SmtpReply(match[1], match[2], match[3])

        parsed = _REPLY.match(default)
        assert parsed is not None
        return self.value(
            mapping,
            key,
            path,
            SmtpReply(parsed[1], parsed[2], parsed[3]),
            convert,
            f'"{klass}NN {klass}.N.N text" on one line',
        )

    def antivirus(self, root: LocatedMap, rules: dict[str, CodeRule]) -> AntivirusConfig:
        path = "antivirus"
        section = self.section(
            root,
            "antivirus",
            "",
            {
                "enabled",
                "clamd",
                "connect_timeout_seconds",
                "read_timeout_seconds",
                "max_scan_bytes",
                "pass_descriptor",
                "skip_authenticated",
                "skip_above_bytes",
                "on_infected",
                "on_unscannable",
                "on_error",
                "infected_reply",
                "error_reply",
            },
        )
        addresses: list[str] = []
        if "clamd" in section:
            for index, (item, line) in enumerate(self.strings(section, "clamd", path)):
                if not CLAMD_ADDRESS.match(item):
                    self.problem(
                        line,
                        f"{path}.clamd[{index}]",
                        f"expected unix:/path or tcp:host:port, got {item!r}",
                    )
                    continue
                addresses.append(item)
        else:
            addresses.append(DEFAULT_CLAMD)
        skip_above = self.value(
            section,
            "skip_above_bytes",
            path,
            None,
            lambda raw: None if raw is None else _positive_int(raw),
            "an integer >= 1 or null",
        )
        infected = self.choice(section, "on_infected", path, Action.REJECT, Action)
        rules["AV_INFECTED"] = CodeRule(
            infected,
            self.reply(section, "infected_reply", path, "554 5.7.1 Virus found: {signature}", "5")
            if infected is Action.REJECT
            else None,
        )
        rules["AV_UNSCANNABLE"] = CodeRule(
            self.choice(section, "on_unscannable", path, Action.QUARANTINE, Action)
        )
        on_error = self.choice(section, "on_error", path, Action.TEMPFAIL, Action)
        rules["AV_ERROR"] = CodeRule(
            on_error,
            self.reply(
                section,
                "error_reply",
                path,
                "451 4.7.1 Virus scanner unavailable, try again later",
                "4",
            )
            if on_error is Action.TEMPFAIL
            else None,
        )
        rules["AV_SKIPPED"] = CodeRule(Action.ACCEPT)
        return AntivirusConfig(
            enabled=self.boolean(section, "enabled", path, False),
            clamd=tuple(addresses),
            connect_timeout=self.number(section, "connect_timeout_seconds", path, 2.0, 0.1),
            read_timeout=self.number(section, "read_timeout_seconds", path, 60.0, 0.1),
            max_scan_bytes=self.integer(
                section, "max_scan_bytes", path, 25 * 1024 * 1024, minimum=1
            ),
            skip_authenticated=self.boolean(section, "skip_authenticated", path, False),
            skip_above_bytes=skip_above,
            pass_descriptor=self.boolean(section, "pass_descriptor", path, True),
        )

    def attachments(self, root: LocatedMap, rules: dict[str, CodeRule]) -> AttachmentsConfig:
        path = "attachments"
        section = self.section(
            root,
            "attachments",
            "",
            {
                "enabled",
                "blocked_extensions",
                "inspect_archives",
                "max_archive_entries",
                "actions",
                "reject_reply",
            },
        )
        blocked: frozenset[str] | None = None
        if "blocked_extensions" in section:
            names = set()
            for index, (item, line) in enumerate(self.strings(section, "blocked_extensions", path)):
                name = item.lower().lstrip(".")
                if not re.fullmatch(r"[a-z0-9_-]{1,32}", name):
                    self.problem(
                        line, f"{path}.blocked_extensions[{index}]", f"not an extension: {item!r}"
                    )
                    continue
                names.add(name)
            blocked = frozenset(names)
        actions = self.section(section, "actions", path, set(ATTACHMENT_ACTIONS))
        reply = self.reply(
            section, "reject_reply", path, "550 5.7.1 Attachment refused by policy: {reason}", "5"
        )
        for key, (code, default) in ATTACHMENT_ACTIONS.items():
            action = self.choice(actions, key, f"{path}.actions", default, Action)
            rules[code] = CodeRule(action, reply if action is Action.REJECT else None)
        return AttachmentsConfig(
            enabled=self.boolean(section, "enabled", path, True),
            blocked_extensions=blocked,
            inspect_archives=self.boolean(section, "inspect_archives", path, True),
            max_archive_entries=self.integer(section, "max_archive_entries", path, 1000, minimum=1),
        )

    def milter(self, root: LocatedMap) -> MilterConfig:
        path = "milter"
        section = self.section(
            root,
            "milter",
            "",
            {
                "socket",
                "socket_group",
                "pid_file",
                "timeout_seconds",
                "spool_memory_bytes",
                "spool_directory",
                "drain_seconds",
                "workers",
                "user",
            },
        )

        def socket_spec(raw: Any) -> str:
            if not isinstance(raw, str) or not SOCKET_SPEC.match(raw):
                raise ValueError("")
            return raw

        def name(raw: Any) -> str:
            if not isinstance(raw, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", raw):
                raise ValueError("")
            return raw

        return MilterConfig(
            socket=self.value(
                section,
                "socket",
                path,
                DEFAULT_SOCKET,
                socket_spec,
                '"unix:/absolute/path" or "inet:PORT@HOST"',
            ),
            socket_group=self.value(section, "socket_group", path, "postfix", name, "a group"),
            pid_file=self.value(section, "pid_file", path, None, self.directory, "a file path"),
            timeout_seconds=self.integer(section, "timeout_seconds", path, 600, minimum=1),
            spool_memory_bytes=self.integer(
                section, "spool_memory_bytes", path, 1024 * 1024, minimum=0
            ),
            spool_directory=self.value(
                section, "spool_directory", path, None, self.directory, "a directory path"
            ),
            drain_seconds=self.number(section, "drain_seconds", path, 60.0, minimum=0),
            workers=self.value(
                section,
                "workers",
                path,
                0,
                lambda raw: 0 if raw == "auto" else _bounded_int(raw, 1, 256),
                "auto or a number of processes from 1 to 256",
            ),
            user=self.value(section, "user", path, "menshen", name, "a user name"),
        )

    def limits(self, root: LocatedMap) -> ExtractionLimits:
        keys = {
            "max_message_bytes": "max_message_bytes",
            "max_mime_depth": "max_depth",
            "max_parts": "max_parts",
            "max_decoded_bytes": "max_decoded_bytes",
            "max_text_chars": "max_text_chars",
            "max_archive_member_bytes": "max_archive_member_bytes",
        }
        section = self.section(root, "limits", "", {*keys, "extraction_deadline_seconds"})
        defaults = ExtractionLimits()
        values: dict[str, Any] = {
            field_name: self.integer(
                section, key, "limits", getattr(defaults, field_name), minimum=1
            )
            for key, field_name in keys.items()
        }
        values["deadline_seconds"] = self.number(
            section,
            "extraction_deadline_seconds",
            "limits",
            defaults.deadline_seconds,
            minimum=0.1,
        )
        return ExtractionLimits(**values)

    def wordlists(self, root: LocatedMap) -> WordlistConfig:
        path = "wordlists"
        section = self.section(
            root,
            "wordlists",
            "",
            {"directory", "default_action", "default_weight", "categories", "max_hits"},
        )
        directory = self.value(section, "directory", path, None, self.directory, "a directory path")
        default_rule = CategoryRule(
            action=self.choice(
                section, "default_action", path, KeywordAction.QUARANTINE, KeywordAction
            ),
            weight=self.number(section, "default_weight", path, 1.0, minimum=0),
        )
        max_hits = self.integer(section, "max_hits", path, 1000, minimum=1)
        if "categories" not in section:
            # The shipped lists' categories, as the default file spells them out.
            return WordlistConfig(
                directory=directory,
                default_rule=default_rule,
                categories=MappingProxyType(dict(DEFAULT_CATEGORIES)),
                max_hits=max_hits,
            )
        categories: dict[str, CategoryRule] = {}
        raw_categories = section.get("categories")
        known = set(raw_categories) if isinstance(raw_categories, LocatedMap) else set()
        cats = self.section(section, "categories", path, known)
        for name in cats:
            cat_path = f"{path}.categories.{name}"
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
                self.problem(
                    cats.key_lines[name],
                    cat_path,
                    "category names are file stems: letters, digits, '_', '-', '.'",
                )
            rule = self.section(cats, name, f"{path}.categories", {"action", "weight"})
            if cats[name] is None:
                self.problem(
                    cats.key_lines[name], cat_path, "expected a mapping with action/weight"
                )
            categories[name] = CategoryRule(
                action=self.choice(rule, "action", cat_path, default_rule.action, KeywordAction),
                weight=self.number(rule, "weight", cat_path, default_rule.weight, minimum=0),
            )
        return WordlistConfig(
            directory=directory,
            default_rule=default_rule,
            categories=MappingProxyType(categories),
            max_hits=max_hits,
        )

    def directory(self, raw: Any) -> Path | None:
        if raw is None:
            return None
        if not isinstance(raw, str) or not raw.strip():
            raise ValueError("")
        path = Path(raw.strip())
        if not path.is_absolute() and self.base_dir is not None:
            path = self.base_dir / path
        return path

    def scoring(self, root: LocatedMap) -> ScoringConfig:
        section = self.section(root, "scoring", "", {"tag_at", "quarantine_at", "reject_at"})
        return ScoringConfig(
            tag_at=self.optional_number(section, "tag_at", "scoring", None),
            quarantine_at=self.optional_number(section, "quarantine_at", "scoring", 10.0),
            reject_at=self.optional_number(section, "reject_at", "scoring", 20.0),
        )

    def replies(self, root: LocatedMap) -> RepliesConfig:
        section = self.section(root, "replies", "", {"reject", "tempfail", "denied"})
        return RepliesConfig(
            reject=self.reply(
                section,
                "reject",
                "replies",
                "550 5.7.1 Message rejected by content policy: {reason}",
                "5",
            ),
            tempfail=self.reply(
                section,
                "tempfail",
                "replies",
                "451 4.3.0 Message could not be checked, try again later",
                "4",
            ),
            denied=self.reply(
                section,
                "denied",
                "replies",
                "554 5.7.1 Mail from this sender is refused by policy",
                "5",
            ),
        )

    def headers(self, root: LocatedMap) -> HeadersConfig:
        section = self.section(root, "headers", "", {"verdict", "tag", "reason", "quota"})

        def name(raw: Any) -> str:
            if not isinstance(raw, str) or not _HEADER_NAME.match(raw):
                raise ValueError("")
            return raw

        expected = "a header field name (printable ASCII, no ':' or spaces)"
        return HeadersConfig(
            verdict=self.value(section, "verdict", "headers", "X-Menshen-Verdict", name, expected),
            tag=self.value(section, "tag", "headers", "X-Menshen-Tag", name, expected),
            reason=self.value(section, "reason", "headers", "X-Menshen-Reason", name, expected),
            quota=self.value(section, "quota", "headers", "X-Menshen-Quota", name, expected),
        )

    def metrics(self, root: LocatedMap) -> MetricsConfig:
        path = "metrics"
        section = self.section(
            root,
            "metrics",
            "",
            {
                "enabled",
                "address",
                "port",
                "client_failure_window_seconds",
                "client_failure_ratio",
                "client_failure_min_messages",
            },
        )
        defaults = MetricsConfig()

        def address(raw: Any) -> str:
            if not isinstance(raw, str):
                raise ValueError("")
            ipaddress.ip_address(raw)  # an address, never a name: no resolver at start
            return raw

        port = self.integer(section, "port", path, defaults.port, minimum=0)
        if port > 65535:
            self.problem(section.key_lines["port"], f"{path}.port", "expected a port <= 65535")
        return MetricsConfig(
            enabled=self.boolean(section, "enabled", path, defaults.enabled),
            address=self.value(
                section, "address", path, defaults.address, address, "an IP address"
            ),
            port=port,
            client_failure_window_seconds=self.number(
                section,
                "client_failure_window_seconds",
                path,
                defaults.client_failure_window_seconds,
                minimum=10,
            ),
            client_failure_ratio=self.number(
                section, "client_failure_ratio", path, defaults.client_failure_ratio, minimum=0
            ),
            client_failure_min_messages=self.integer(
                section,
                "client_failure_min_messages",
                path,
                defaults.client_failure_min_messages,
                minimum=1,
            ),
        )

    def audit(self, root: LocatedMap) -> AuditConfig:
        path = "audit"
        section = self.section(
            root,
            "audit",
            "",
            {
                "target",
                "file",
                "syslog_facility",
                "hash_addresses",
                "hash_key_file",
                "include_terms",
            },
        )
        defaults = AuditConfig()

        def facility(raw: Any) -> str:
            if raw not in SYSLOG_FACILITIES:
                raise ValueError("")
            return str(raw)

        audit_file = self.value(section, "file", path, None, self.directory, "a file path")
        key_file = self.value(section, "hash_key_file", path, None, self.directory, "a file path")
        hashing = self.boolean(section, "hash_addresses", path, defaults.hash_addresses)
        if hashing and key_file is None:
            self.problem(
                section.key_lines.get("hash_addresses", section.line),
                f"{path}.hash_addresses",
                "needs audit.hash_key_file (a secret key, e.g. 32 random bytes)",
            )
        return AuditConfig(
            target=self.choice(section, "target", path, defaults.target, AuditTarget),
            file=audit_file or defaults.file,
            syslog_facility=self.value(
                section,
                "syslog_facility",
                path,
                defaults.syslog_facility,
                facility,
                "one of " + ", ".join(sorted(SYSLOG_FACILITIES)),
            ),
            hash_addresses=hashing,
            hash_key_file=key_file,
            include_terms=self.boolean(section, "include_terms", path, defaults.include_terms),
        )

    def quarantine(self, root: LocatedMap) -> QuarantineConfig:
        section = self.section(root, "quarantine", "", {"postfix_config_directory"})
        return QuarantineConfig(
            postfix_config_directory=self.value(
                section,
                "postfix_config_directory",
                "quarantine",
                None,
                self.directory,
                "a directory path",
            )
        )

    def quotas(self, root: LocatedMap, rules: dict[str, CodeRule]) -> QuotaConfig:
        path = "quotas"
        section = self.section(
            root,
            "quotas",
            "",
            {
                "enabled",
                "timezone",
                "null_sender",
                "check_at_rcpt",
                "warn_at",
                "on_exceeded",
                "exceeded_reply",
                "store",
                "rules",
            },
        )
        defaults = QuotaConfig()
        zone, zone_name = self.timezone(section, path)
        on_exceeded = self.choice(section, "on_exceeded", path, Action.TEMPFAIL, Action)
        if on_exceeded not in (Action.TEMPFAIL, Action.REJECT):
            self.problem(
                section.key_lines["on_exceeded"],
                f"{path}.on_exceeded",
                "expected tempfail or reject",
            )
        klass = "5" if on_exceeded is Action.REJECT else "4"
        default_reply = (
            "550 5.7.1 Sending quota exceeded: {reason}"
            if klass == "5"
            else "451 4.7.1 Sending quota exceeded, try again later: {reason}"
        )
        rules["QUOTA_EXCEEDED"] = CodeRule(
            on_exceeded, self.reply(section, "exceeded_reply", path, default_reply, klass)
        )
        rules["QUOTA_WARNING"] = CodeRule(Action.ACCEPT)
        rules["QUOTA_DEGRADED"] = CodeRule(Action.ACCEPT)
        rules["QUOTA_STORE_ERROR"] = CodeRule(
            Action.TEMPFAIL,
            SmtpReply("451", "4.3.0", "Sending quota cannot be checked, try again later"),
        )
        warn_at = self.fraction(section, "warn_at", path, 0.8)
        store = self.quota_store(section, path)
        rule_list = self.quota_rules(section, path, warn_at)
        return QuotaConfig(
            enabled=self.boolean(section, "enabled", path, defaults.enabled),
            zone=zone,
            zone_name=zone_name,
            null_sender=self.choice(section, "null_sender", path, NullSender.SKIP, NullSender),
            check_at_rcpt=self.boolean(section, "check_at_rcpt", path, defaults.check_at_rcpt),
            rules=rule_list,
            store=store,
        )

    def fraction(
        self, mapping: LocatedMap, key: str, path: str, default: float | None
    ) -> float | None:
        def convert(raw: Any) -> float | None:
            if raw is None:
                return None
            if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 < raw <= 1:
                raise ValueError("")
            return float(raw)

        return self.value(mapping, key, path, default, convert, "a fraction in (0, 1] or null")

    def timezone(self, section: LocatedMap, path: str) -> tuple[tzinfo, str]:
        name = section.get("timezone", "local")
        if not isinstance(name, str) or not name.strip():
            self.problem(
                section.key_lines.get("timezone", section.line),
                f"{path}.timezone",
                f"expected a time zone name such as Asia/Shanghai, got {_show(name)}",
            )
            return UTC, "UTC"
        try:
            return _time_zone(name.strip()), name.strip()
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            self.problem(
                section.key_lines.get("timezone", section.line),
                f"{path}.timezone",
                f"unknown time zone {name!r} (a name from /usr/share/zoneinfo, or local)",
            )
            return UTC, "UTC"

    def quota_store(self, section: LocatedMap, path: str) -> QuotaStoreConfig:
        path = f"{path}.store"
        store = self.section(
            section,
            "store",
            "quotas",
            {
                "type",
                "path",
                "redis_url",
                "timeout_seconds",
                "key_prefix",
                "on_error",
                "retry_seconds",
            },
        )
        defaults = QuotaStoreConfig()

        def redis_url(raw: Any) -> str:
            if not isinstance(raw, str) or not re.match(r"^(rediss?|unix)://\S+$", raw):
                raise ValueError("")
            return raw

        def prefix(raw: Any) -> str:
            if not isinstance(raw, str) or not re.fullmatch(r"[!-~]{1,64}", raw):
                raise ValueError("")
            return raw

        return QuotaStoreConfig(
            kind=self.choice(store, "type", path, defaults.kind, QuotaStoreKind),
            path=self.value(store, "path", path, defaults.path, _state_path, "a file path"),
            redis_url=self.value(
                store,
                "redis_url",
                path,
                defaults.redis_url,
                redis_url,
                "redis://HOST:PORT/DB, rediss://... or unix:///PATH?db=N",
            ),
            timeout_seconds=self.number(store, "timeout_seconds", path, 0.5, 0.01),
            key_prefix=self.value(
                store, "key_prefix", path, defaults.key_prefix, prefix, "printable ASCII"
            ),
            on_error=self.choice(store, "on_error", path, defaults.on_error, StoreFailure),
            retry_seconds=self.number(store, "retry_seconds", path, 10.0, 0.0),
        )

    def quota_rules(
        self, section: LocatedMap, path: str, warn_at: float | None
    ) -> tuple[QuotaRule, ...]:
        raw = section.get("rules")
        if raw is None:
            return ()
        path = f"{path}.rules"
        if not isinstance(raw, LocatedList):
            self.problem(section.key_lines["rules"], path, f"expected a list, got {_kind(raw)}")
            return ()
        found: list[QuotaRule] = []
        names: set[str] = set()
        for index, (item, line) in enumerate(zip(raw, raw.item_lines, strict=True)):
            where = f"{path}[{index}]"
            if not isinstance(item, LocatedMap):
                self.problem(line, where, f"expected a mapping, got {_kind(item)}")
                continue
            rule = self.quota_rule(item, where, warn_at)
            if rule is None:
                continue
            if rule.name in names:
                self.problem(item.key_lines.get("name", line), f"{where}.name", "duplicate name")
                continue
            names.add(rule.name)
            found.append(rule)
        return tuple(found)

    def quota_rule(self, item: LocatedMap, path: str, warn_at: float | None) -> QuotaRule | None:
        self.unknown_keys(
            item,
            path,
            {
                "name",
                "key",
                "count",
                "limit",
                "per",
                "warn_at",
                "overrides",
                "exempt",
                "ipv4_prefix",
                "ipv6_prefix",
            },
        )
        missing = [name for name in ("name", "key", "limit", "per") if name not in item]
        for absent in missing:
            self.problem(item.line, f"{path}.{absent}", "required")
        if missing:
            return None

        def name(raw: Any) -> str:
            if not isinstance(raw, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", raw):
                raise ValueError("")
            return raw

        key = self.choice(item, "key", path, QuotaKey.SENDER, QuotaKey)
        overrides: dict[str, int | None] = {}
        mapping = item.get("overrides")
        if mapping is not None and not isinstance(mapping, LocatedMap):
            self.problem(
                item.key_lines["overrides"],
                f"{path}.overrides",
                f"expected a mapping of identity: limit, got {_kind(mapping)}",
            )
        entries: LocatedMap = mapping if isinstance(mapping, LocatedMap) else LocatedMap()
        for identity, value in entries.items():
            if value == "unlimited":
                overrides[_identity(identity, key)] = None
            elif isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                overrides[_identity(identity, key)] = value
            else:
                self.problem(
                    entries.key_lines[identity],
                    f"{path}.overrides.{identity}",
                    f"expected an integer >= 0 or unlimited, got {_show(value)}",
                )
        exempt: set[str] = set()
        networks: list[IPNetwork] = []
        for index, (entry, line) in enumerate(self.strings(item, "exempt", path)):
            if key is QuotaKey.CLIENT_IP:
                try:
                    networks.append(ipaddress.ip_network(entry, strict=False))
                except ValueError:
                    self.problem(
                        line, f"{path}.exempt[{index}]", f"not an IP address or CIDR: {entry!r}"
                    )
            else:
                exempt.add(_identity(entry, key))
        return QuotaRule(
            name=self.value(item, "name", path, "", name, "letters, digits, '_', '.' or '-'"),
            key=key,
            count=self.choice(item, "count", path, QuotaCount.MESSAGES, QuotaCount),
            limit=self.integer(item, "limit", path, 0, minimum=0),
            window=self.value(
                item,
                "per",
                path,
                QuotaWindow(seconds=60),
                _quota_window,
                "day, week, month (calendar) or minute, hour, or a length such as 90s, 15m, "
                "24h, 7d (rolling)",
            ),
            warn_at=self.fraction(item, "warn_at", path, warn_at),
            overrides=MappingProxyType(overrides),
            exempt=frozenset(exempt),
            exempt_networks=tuple(networks),
            ipv4_prefix=self.value(
                item, "ipv4_prefix", path, 32, lambda raw: _bounded_int(raw, 8, 32), "8 to 32"
            ),
            ipv6_prefix=self.value(
                item, "ipv6_prefix", path, 64, lambda raw: _bounded_int(raw, 16, 128), "16 to 128"
            ),
        )

    def address_list(self, lists: LocatedMap, key: str) -> AddressList:
        path = f"lists.{key}"
        section = self.section(
            lists, key, "lists", {"senders", "recipients", "domains", "client_ips"}
        )
        senders = self.addresses(section, "senders", path)
        recipients = self.addresses(section, "recipients", path)
        domains: set[str] = set()
        for index, (item, line) in enumerate(self.strings(section, "domains", path)):
            domain = item.lower().rstrip(".")
            if not re.fullmatch(r"\.?[a-z0-9_-]+(\.[a-z0-9_-]+)*", domain):
                self.problem(line, f"{path}.domains[{index}]", f"not a domain name: {item!r}")
                continue
            domains.add(domain)
        networks: list[IPNetwork] = []
        for index, (item, line) in enumerate(self.strings(section, "client_ips", path)):
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                self.problem(
                    line, f"{path}.client_ips[{index}]", f"not an IP address or CIDR: {item!r}"
                )
        return AddressList(
            senders=frozenset(senders),
            recipients=frozenset(recipients),
            domains=frozenset(domains),
            networks=tuple(networks),
        )

    def addresses(self, section: LocatedMap, key: str, path: str) -> set[str]:
        found: set[str] = set()
        for index, (item, line) in enumerate(self.strings(section, key, path)):
            address = item.strip("<>").lower()
            if address.count("@") != 1 or address.startswith("@") or address.endswith("@"):
                self.problem(line, f"{path}.{key}[{index}]", f"not an address: {item!r}")
                continue
            found.add(address)
        return found


_DURATION = re.compile(r"^(\d{1,7})([smhd])$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_ROLLING_NAMES = {"minute": 60, "hour": 3600}


def _quota_window(raw: Any) -> QuotaWindow:
    if isinstance(raw, str):
        text = raw.strip().lower()
        if text in {period.value for period in CalendarPeriod}:
            return QuotaWindow(calendar=CalendarPeriod(text))
        if text in _ROLLING_NAMES:
            return QuotaWindow(seconds=_ROLLING_NAMES[text])
        match = _DURATION.match(text)
        if match and int(match[1]) > 0:
            return QuotaWindow(seconds=int(match[1]) * _DURATION_UNITS[match[2]])
    raise ValueError("")


def _bounded_int(raw: Any, low: int, high: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
        raise ValueError("")
    return raw


def _identity(text: str, key: QuotaKey) -> str:
    """How a configured identity is compared: addresses and domains without case."""
    text = text.strip()
    if key is QuotaKey.CLIENT_IP:
        return text
    return text.strip("<>").lower() if text != "<>" else text


def _time_zone(name: str) -> tzinfo:
    """A zone from the tz database; "local" is the system's own (/etc/localtime)."""
    if name == "local":
        try:
            with open("/etc/localtime", "rb") as handle:
                return zoneinfo.ZoneInfo.from_file(handle, key="localtime")
        except OSError:
            return UTC
    if name.upper() == "UTC":
        return UTC
    return zoneinfo.ZoneInfo(name)


def _state_path(raw: Any) -> Path:
    """A state file; a relative one lives in $STATE_DIRECTORY (systemd) or /var/lib/menshen."""
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("")
    path = Path(raw.strip())
    if path.is_absolute():
        return path
    base = os.environ.get("STATE_DIRECTORY", "").split(":")[0] or "/var/lib/menshen"
    return Path(base) / path


def _positive_int(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise ValueError("")
    return raw


def _kind(value: Any) -> str:
    if isinstance(value, LocatedMap):
        return "a mapping"
    if isinstance(value, LocatedList):
        return "a list"
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {_show(value)}"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _closest(key: str, allowed: set[str]) -> str | None:
    matches = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.75)
    return matches[0] if matches else None
