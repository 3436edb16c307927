"""Cross-process locks with fencing tokens: ``async with advisory_lock(name) as lock:``."""

from viveka_db.locks.advisory import AdvisoryLock, advisory_lock

__all__ = ["AdvisoryLock", "advisory_lock"]
