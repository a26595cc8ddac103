"""Memory readings: what the machine has, what is free, and what this process holds now and held at peak.

Linux's /proc first (no dependency), psutil where there is no /proc (macOS, Windows), else None: a reading
that cannot be made is absent, never guessed. The /proc files share one `Key:  N kB` line format, parsed by
one pure function.
"""

from __future__ import annotations

import sys


def parse_proc_kb_mb(text: str, key: str) -> float | None:
    """The `key:  N kB` line of a /proc file (/proc/meminfo, /proc/self/status) in MiB, or None. Pure."""
    for line in text.splitlines():
        if line.startswith(f"{key}:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1]) / 1024.0
    return None


def parse_meminfo_mb(text: str) -> float | None:
    """MemTotal of /proc/meminfo in MiB. Pure."""
    return parse_proc_kb_mb(text, "MemTotal")


def _proc_mb(path: str, key: str) -> float | None:
    try:
        with open(path) as f:
            return parse_proc_kb_mb(f.read(), key)
    except OSError:
        return None


def available_memory_mb() -> float | None:
    """MemAvailable (Linux) or psutil's figure, in MiB; None when unknown."""
    found = _proc_mb("/proc/meminfo", "MemAvailable")
    if found is not None:
        return found
    try:
        import psutil

        return psutil.virtual_memory().available / 2**20
    except ImportError:
        return None


def current_rss_mb() -> float | None:
    """Resident set size of this process now, in MiB (Linux /proc, else psutil, else None)."""
    found = _proc_mb("/proc/self/status", "VmRSS")
    if found is not None:
        return found
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        return None


def peak_rss_mb() -> float | None:
    """This process's peak resident memory: VmHWM on Linux, else ru_maxrss (bytes on macOS), else psutil's.

    Not ru_maxrss on Linux: it survives execve, so a worker spawned by a large parent (pytest with torch
    loaded, say) would start with the parent's peak as its own."""
    hwm = _proc_mb("/proc/self/status", "VmHWM")
    if hwm is not None:
        return hwm
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024.0
    except ImportError:
        try:
            import psutil

            return psutil.Process().memory_info().peak_wset / 2**20  # Windows
        except (ImportError, AttributeError):
            return None
