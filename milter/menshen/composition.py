"""The composition root: builds an Engine, and everything it needs, from a Config.

In:  a validated Config and, optionally, a wordlist directory that replaces the configured
     one (`--wordlists DIR`: every file a category; categories the config does not name get
     wordlists.default_action).
Out: an immutable Engine (structure, keyword and, when enabled, attachment and clamd
     scanners), plus notes for the operator (e.g. a configured category with no
     file). `menshen check`, `menshen configtest` and the milter daemon all build through
     here, so they run the same engine.
Fails: WordlistError (every problem, file:line) when a list cannot be read; QuotaStoreError
       when the embedded quota store cannot be opened.
Thread safety: builds new objects on each call and shares nothing.
"""

from __future__ import annotations

import importlib.resources
import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path

from menshen.clamd import ClamdClient, ClamdSettings
from menshen.config import AntivirusConfig, AttachmentsConfig, Config, QuotaConfig, QuotaStoreKind
from menshen.engine import Engine
from menshen.extraction import Extractor
from menshen.keywords.matcher import KeywordMatcher
from menshen.keywords.wordlist import Wordlist, load_wordlist_dir
from menshen.quota import MemoryStore, QuotaLimiter, QuotaStore
from menshen.quota.redis_store import RedisStore
from menshen.quota.sqlite_store import SqliteStore
from menshen.scanners.antivirus import AntivirusOptions, AntivirusScanner
from menshen.scanners.attachments import AttachmentRules, AttachmentScanner
from menshen.scanners.base import Scanner
from menshen.scanners.keywords import KeywordScanner
from menshen.scanners.structure import StructureScanner


@dataclass(frozen=True, slots=True)
class Assembly:
    engine: Engine
    keyword_scanner: KeywordScanner  # the engine's own, for `menshen wordlist test TEXT`
    wordlists: tuple[Wordlist, ...]
    notes: tuple[str, ...]  # things an operator should know, none of them fatal


def wordlist_source(config: Config, override: Path | None = None) -> Path | Traversable:
    """Where the wordlists come from: the override, the configured directory or the shipped."""
    if override is not None:
        return override
    if config.policy.wordlists.directory is not None:
        return config.policy.wordlists.directory
    return importlib.resources.files("menshen.builtin_wordlists")


def _attachment_rules(settings: AttachmentsConfig) -> AttachmentRules:
    defaults = AttachmentRules()
    return AttachmentRules(
        blocked_extensions=defaults.blocked_extensions
        if settings.blocked_extensions is None
        else settings.blocked_extensions,
        inspect_archives=settings.inspect_archives,
        max_archive_entries=settings.max_archive_entries,
    )


def _antivirus(settings: AntivirusConfig) -> AntivirusScanner:
    client = ClamdClient(
        ClamdSettings(
            addresses=settings.clamd,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            max_stream_bytes=settings.max_scan_bytes,
            pass_descriptor=settings.pass_descriptor,
        )
    )
    options = AntivirusOptions(
        skip_authenticated=settings.skip_authenticated,
        skip_above_bytes=settings.skip_above_bytes,
    )
    return AntivirusScanner(client, options)


def quota_limiter(
    settings: QuotaConfig,
    logger: logging.Logger | None = None,
    on_backend: Callable[[bool], None] | None = None,
) -> QuotaLimiter:
    """The limiter over the configured store. Raises QuotaStoreError when the embedded
    store cannot be opened (a configuration mistake, shown at start and on reload); an
    unreachable Redis is not an error here: mail is counted locally meanwhile."""
    store: QuotaStore
    fallback: QuotaStore | None = None
    kind = settings.store.kind
    if kind is QuotaStoreKind.MEMORY:
        store = MemoryStore()
    else:
        local = SqliteStore(settings.store.path)
        local.open()
        store = local
        if kind is QuotaStoreKind.REDIS:
            store = RedisStore(
                settings.store.redis_url, settings.store.timeout_seconds, settings.store.key_prefix
            )
            fallback = local
    return QuotaLimiter(settings, store, fallback, logger=logger, on_backend=on_backend)


def assemble(
    config: Config,
    wordlists_override: Path | None = None,
    charge_quota: bool = True,
    logger: logging.Logger | None = None,
    on_quota_backend: Callable[[bool], None] | None = None,
    limiter: QuotaLimiter | None = None,
    wordlists: tuple[Wordlist, ...] | None = None,
) -> Assembly:
    """Build the engine. `charge_quota=False` (menshen check) looks at quotas, never counts.

    `limiter` replaces the one the quotas section would build (tests, benchmarks);
    `wordlists` are lists already loaded from `config` (a worker gets its parent's, which
    the parent validated), so the files are not read again.
    Raises WordlistError, or QuotaStoreError when the quota store cannot be opened."""
    source = wordlist_source(config, wordlists_override)
    if wordlists is None:
        wordlists = load_wordlist_dir(source)
    matcher = KeywordMatcher.build(wordlists)
    keyword_scanner = KeywordScanner(matcher, max_hits=config.policy.wordlists.max_hits)
    scanners: list[Scanner] = [StructureScanner(), keyword_scanner]
    if config.attachments.enabled:
        scanners.append(AttachmentScanner(_attachment_rules(config.attachments)))
    if config.antivirus.enabled:
        scanners.append(_antivirus(config.antivirus))
    quota = limiter
    if quota is None and config.quotas.enabled and config.quotas.rules:
        quota = quota_limiter(config.quotas, logger, on_quota_backend)
    engine = Engine(
        Extractor(config.limits),
        scanners,
        config.policy,
        logger=logger,
        quota=quota,
        charge_quota=charge_quota,
        quota_at_rcpt=config.quotas.check_at_rcpt,
    )
    notes: list[str] = []
    loaded = {wordlist.category for wordlist in wordlists}
    if wordlists_override is None:
        for category in sorted(set(config.policy.wordlists.categories) - loaded):
            notes.append(
                f"{config.source}: wordlists.categories.{category}: no file {category}.txt "
                f"in {source}; the category is configured but never matches"
            )
    return Assembly(
        engine=engine, keyword_scanner=keyword_scanner, wordlists=wordlists, notes=tuple(notes)
    )
