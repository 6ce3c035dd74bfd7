"""What every peer script shares; standard library only, since peers run in their own venvs."""

from __future__ import annotations

import json
import resource
import sys
import time


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Counter:
    """Counts trades; marks the clock at the first and at the `target`-th."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.count = 0
        self.first = 0.0
        self.last = 0.0
        self.cpu_first = 0.0
        self.cpu_last = 0.0

    def hit(self) -> bool:
        """Count one trade; True once the target is reached."""
        self.count += 1
        if self.count == 1:
            self.first = time.perf_counter()
            self.cpu_first = cpu_seconds()
        if self.count == self.target:
            self.last = time.perf_counter()
            self.cpu_last = cpu_seconds()
            return True
        return False

    def report(self) -> None:
        result = {
            "count": self.target - 1,
            "seconds": self.last - self.first,
            "cpu_s": self.cpu_last - self.cpu_first,
        }
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()
