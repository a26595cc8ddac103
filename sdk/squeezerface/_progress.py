"""Progress reporting for long loops: tqdm when installed, a plain periodic line on stderr otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], total: int | None, desc: str, enabled: bool = True) -> Iterator[T]:
    """Yield `items` while showing progress; silent when `enabled` is False."""
    if not enabled:
        yield from items
        return
    try:
        from tqdm import tqdm
    except ImportError:
        yield from _plain_progress(items, total, desc)
        return
    yield from tqdm(items, total=total, desc=desc, unit="img", dynamic_ncols=True, file=sys.stderr)


def _plain_progress(items: Iterable[T], total: int | None, desc: str, every_s: float = 5.0) -> Iterator[T]:
    start = last = time.monotonic()
    done = 0
    for item in items:
        yield item
        done += 1
        now = time.monotonic()
        if now - last >= every_s:
            last = now
            of = f"/{total}" if total else ""
            print(f"{desc}: {done}{of} ({done / (now - start):.1f}/s)", file=sys.stderr, flush=True)
    print(f"{desc}: {done} done in {time.monotonic() - start:.1f} s", file=sys.stderr, flush=True)
