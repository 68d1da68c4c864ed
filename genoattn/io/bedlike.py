"""Records of tab-separated interval files (BED, BEDPE), plain or gzip: the one line reader.

Yields ``(1-based line number, fields)``, skipping blank, ``#``, ``track`` and ``browser`` lines;
coordinates are left to the caller, which knows the format's columns and its error messages.
"""

from __future__ import annotations

import gzip
import os
from typing import Iterator, Mapping

import numpy as np


def iter_records(path: str | os.PathLike) -> Iterator[tuple[int, list[str]]]:
    opener = gzip.open if str(path).endswith((".gz", ".bgz")) else open
    with opener(path, "rt") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            yield lineno, line.rstrip("\n").split("\t")


def read_bed(path, contig: str, aliases=None, chr_prefix: str = "auto", contig_length: int | None = None):
    """Intervals of ``contig`` in a BED file (gzip allowed; 0-based half-open, as BED is).

    Columns: chrom, start, end[, name]. Names are matched to ``contig`` through the alias map and the
    chr-prefix policy; records on other contigs are skipped. Returns a dict start, end, name (sorted).
    """
    from genoattn.contigs import ContigMap

    cmap = ContigMap([contig], aliases, chr_prefix)
    starts, ends, names = [], [], []
    for lineno, f in iter_records(path):
        if len(f) < 3:
            raise ValueError(f"{path}: line {lineno}: a BED record needs chrom, start, end separated by tabs; "
                             f"got {' '.join(f)[:80]!r}. Fix: correct the record or remove it")
        if cmap.map(f[0]) != contig:
            continue
        try:
            s, e = int(f[1]), int(f[2])
        except ValueError:
            raise ValueError(f"{path}: line {lineno}: start/end {f[1]!r}/{f[2]!r} are not integers "
                             "(BED is 0-based half-open). Fix: correct the record or remove it") from None
        if s < 0 or e <= s or (contig_length is not None and s >= contig_length):
            raise ValueError(f"{path}: line {lineno}: interval {f[0]}:{s}-{e} is empty, negative or past the "
                             f"end of {contig} ({contig_length} bp). Fix: correct or remove the record")
        starts.append(s)
        ends.append(min(e, contig_length) if contig_length is not None else e)
        names.append(f[3] if len(f) > 3 and f[3] not in ("", ".") else f"{contig}:{s}-{e}")
    order = np.argsort(np.asarray(starts, dtype=np.int64), kind="stable")
    return {"start": np.asarray(starts, dtype=np.int64)[order], "end": np.asarray(ends, dtype=np.int64)[order],
            "name": np.asarray(names, dtype=object)[order]}


def check_bed(path, reference_lengths: Mapping[str, int], aliases=None, chr_prefix: str = "auto") -> str:
    """The whole BED read as the level-4 jobs will read it, for the pre-flight: every record of a reference
    contig well-formed and inside it. Returns a summary."""
    from genoattn.contigs import ContigMap

    cmap = ContigMap(list(reference_lengths), aliases, chr_prefix)
    seen = {cmap.map(f[0]) for _, f in iter_records(path) if f}
    n = 0
    for contig in sorted(c for c in seen if c):
        n += len(read_bed(path, contig, aliases, chr_prefix, int(reference_lengths[contig]))["start"])
    if any(len(f) < 3 for _, f in iter_records(path)):
        lineno, f = next((i, f) for i, f in iter_records(path) if len(f) < 3)
        raise ValueError(f"{path}: line {lineno}: a BED record needs chrom, start, end separated by tabs; got "
                         f"{' '.join(f)[:80]!r}. Fix: correct the record or remove it")
    return f"{n} elements on reference contigs"
