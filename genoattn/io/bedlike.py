"""Records of tab-separated interval files (BED, BEDPE), plain or gzip: the one line reader.

Yields ``(1-based line number, fields)``, skipping blank, ``#``, ``track`` and ``browser`` lines;
coordinates are left to the caller, which knows the format's columns and its error messages.
"""

from __future__ import annotations

import gzip
import os
from typing import Iterator


def iter_records(path: str | os.PathLike) -> Iterator[tuple[int, list[str]]]:
    opener = gzip.open if str(path).endswith((".gz", ".bgz")) else open
    with opener(path, "rt") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            yield lineno, line.rstrip("\n").split("\t")
