"""Several instances on one PostgreSQL database, each enabled symbol streamed by exactly one.

`rules` holds the lease rules without I/O, `store` their PostgreSQL statements, `runtime` the
supervised child that renews, claims and reconciles, and `lock` keeps SQLite single-instance.
"""

from streamer.ownership.lock import InstanceLock, InstanceLocked
from streamer.ownership.rules import DatabaseOutage, Holdings, InvalidLeaseTimes, LeaseTimes
from streamer.ownership.runtime import Ownership
from streamer.ownership.store import InstanceInfo, LeaseStore

__all__ = [
    "DatabaseOutage",
    "Holdings",
    "InstanceInfo",
    "InstanceLock",
    "InstanceLocked",
    "InvalidLeaseTimes",
    "LeaseStore",
    "LeaseTimes",
    "Ownership",
]
