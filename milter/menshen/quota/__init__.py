"""Per-sender quotas: rules that turn an envelope into counters, stores that keep them.

In:  the `quotas` section of the configuration and the envelope of each message.
Out: findings (QUOTA_EXCEEDED, QUOTA_WARNING, QUOTA_DEGRADED, QUOTA_STORE_ERROR) for the
     policy; counts kept in memory, SQLite (the embedded default) or Redis (for fleets).
Fails: stores raise QuotaStoreError; the limiter turns it into the configured behaviour.
Thread safety: every store and the limiter may be shared by all connections' threads.
"""

from menshen.quota.limiter import QuotaLimiter, UsageRow
from menshen.quota.rules import Counter, counters_for, identity_for
from menshen.quota.stores import Admission, MemoryStore, QuotaStore, QuotaStoreError

__all__ = [
    "Admission",
    "Counter",
    "MemoryStore",
    "QuotaLimiter",
    "QuotaStore",
    "QuotaStoreError",
    "UsageRow",
    "counters_for",
    "identity_for",
]
