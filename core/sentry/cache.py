"""A marshal cache for data parsed from the package's own text tables.

Parsing the syscall table and the policy costs about 20 ms, and every
``create`` pays it. The parsed form is kept next to the package's ``.pyc``
files and rebuilt whenever a source file's size or modification time changes.
It is written only where the package directory is writable, which is also
what guards the ``.pyc`` files.
"""

from __future__ import annotations

import marshal
import os
from collections.abc import Callable
from typing import Any

CACHE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "__pycache__")


def cached(name: str, sources: list[str], build: Callable[[], Any]) -> Any:
    """Return BUILD()'s result (marshal-able data), memoized by the SOURCES' stat."""
    try:
        key = [(os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in sources]
    except OSError:
        return build()
    path = os.path.join(CACHE_DIR, f"{name}.marshal")
    try:
        with open(path, "rb") as f:
            stored_key, value = marshal.load(f)
        if stored_key == key:
            return value
    except (OSError, ValueError, EOFError, TypeError):
        pass
    value = build()
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(CACHE_DIR, exist_ok=True)
        with open(temporary, "wb") as f:
            marshal.dump((key, value), f)
        os.replace(temporary, path)
    except OSError:
        pass  # a read-only installation parses every time
    return value
