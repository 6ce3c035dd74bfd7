"""What every peer script shares; standard library only, since peers run in their own venvs."""

from __future__ import annotations

import json
import os
import resource
import sys
import time

MOCK_PID = "BENCH_MOCK_PID"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds process `pid` has used, from /proc."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Clock:
    """Wall time, this process's CPU and the mock's CPU (when $BENCH_MOCK_PID names it).

    The mock's CPU over the same span tells whether the mock was busy all along, and so was the
    limit, or waited for the client.
    """

    def __init__(self) -> None:
        pid = os.environ.get(MOCK_PID)
        self.mock_pid = int(pid) if pid else None
        self.wall = time.perf_counter()
        self.cpu = cpu_seconds()
        self.mock_cpu = process_cpu_seconds(self.mock_pid) if self.mock_pid else 0.0

    def since(self, start: Clock, count: int) -> dict[str, float]:
        """The result line of `count` trades counted between `start` and this clock."""
        result = {"count": count, "seconds": self.wall - start.wall, "cpu_s": self.cpu - start.cpu}
        if self.mock_pid:
            result["mock_cpu_s"] = self.mock_cpu - start.mock_cpu
        return result


class Counter:
    """Counts trades; reads the clocks at the first and at the `target`-th."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.count = 0
        self.first: Clock | None = None
        self.last: Clock | None = None

    def hit(self) -> bool:
        """Count one trade; True once the target is reached."""
        self.count += 1
        if self.count == 1:
            self.first = Clock()
        if self.count == self.target:
            self.last = Clock()
            return True
        return False

    def report(self) -> None:
        assert self.first is not None
        assert self.last is not None
        result = self.last.since(self.first, self.target - 1)
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()
