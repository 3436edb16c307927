"""A circuit breaker: after repeated failures, stop calling a backend for a while.

It bounds what an outage costs each call: once open, calls skip the backend at once
instead of each waiting for a timeout. After ``recovery_time`` one probe call is let
through (half-open); its success closes the breaker, its failure opens it again.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

__all__ = ["CircuitBreaker"]


class CircuitBreaker:
    __slots__ = (
        "_clock",
        "_failures",
        "_open_until",
        "_probing",
        "failure_threshold",
        "recovery_time",
    )

    def __init__(
        self,
        *,
        failure_threshold: int = 3,
        recovery_time: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be at least 1, got {failure_threshold!r}")
        if recovery_time <= 0:
            raise ValueError(f"recovery_time must be positive, got {recovery_time!r}")
        self.failure_threshold = failure_threshold
        self.recovery_time = recovery_time
        self._clock = clock
        self._failures = 0
        self._open_until = 0.0
        self._probing = -math.inf

    @property
    def is_open(self) -> bool:
        return self._open_until != 0.0

    def allow(self) -> bool:
        """Whether a call may go to the backend now (at most one probe while half-open).

        A probe that never reports back (its caller was cancelled) stops blocking the
        next one after ``recovery_time``.
        """
        if self._open_until == 0.0:
            return True
        now = self._clock()
        if now < self._open_until or now - self._probing < self.recovery_time:
            return False
        self._probing = now
        return True

    def record_success(self) -> bool:
        """Note a successful call; ``True`` if this closed an open breaker (recovery)."""
        self._failures = 0
        self._probing = -math.inf
        if self._open_until != 0.0:
            self._open_until = 0.0
            return True
        return False

    def record_failure(self) -> bool:
        """Note a failed call; ``True`` if this opened a closed breaker."""
        self._failures += 1
        was_open = self._open_until != 0.0
        if was_open or self._failures >= self.failure_threshold:
            self._open_until = self._clock() + self.recovery_time
            self._probing = -math.inf
            return not was_open
        return False
