"""On-disk cache of compiled device programs, keyed by source and device; bad entries are rebuilt."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from .switches import switch


def cache_dir() -> Path:
    """`WB_CACHE_DIR`, else ~/.cache/petaflop-workbench."""
    return Path(switch("WB_CACHE_DIR") or Path.home() / ".cache" / "petaflop-workbench")


def cache_key(*parts: str) -> str:
    """A stable hex key for the given strings (source, device name, driver version...)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode())
        h.update(b"\0")
    return h.hexdigest()[:40]


def read(kind: str, key: str) -> bytes | None:
    """The cached bytes for a key, or None when missing or unreadable."""
    try:
        return (cache_dir() / kind / key).read_bytes()
    except OSError:
        return None


def write(kind: str, key: str, data: bytes) -> None:
    """Store bytes atomically (write to a temp file, then rename); failures only skip caching."""
    d = cache_dir() / kind
    try:
        d.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=d)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, d / key)
    except OSError:
        pass


def remove(kind: str, key: str) -> None:
    """Drop a cache entry (used when an entry turns out to be corrupt)."""
    try:
        (cache_dir() / kind / key).unlink()
    except OSError:
        pass
