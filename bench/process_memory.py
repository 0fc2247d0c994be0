"""This process's resident memory from /proc/self/status, for the benches that report it
(memory_bench, scale_bench, soak). Not a benchmark by itself."""

from __future__ import annotations

from pathlib import Path


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident memory of this process in MB (VmRSS, VmHWM)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)
