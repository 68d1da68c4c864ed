"""Opening annotation files (plain, gzip, bgzip), telling GTF from GFF3, and the checks every
data line goes through (9 columns, 1-based integer coordinates)."""

from __future__ import annotations

import gzip
import io
import os
import re
from pathlib import Path

from genoattn.io.annotation.errors import AnnotationError, _err


def _compression(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(6)
    if head[:2] == b"\x1f\x8b":
        return "gzip"  # plain gzip and bgzip both (bgzip = multi-member gzip)
    if head[:3] == b"BZh":
        return "bzip2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return "zstd"
    return "plain"


def _open_text(path: Path):
    kind = _compression(path)
    if kind == "gzip":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace", newline=None)
    if kind != "plain":
        raise AnnotationError(
            f"{path}: {kind}-compressed annotation; only plain text, gzip and bgzip are read. "
            f"Fix: recompress it (`{ {'bzip2': 'bzcat', 'xz': 'xzcat', 'zstd': 'zstdcat'}[kind]} {path} | gzip -c > "
            f"{path.with_suffix('')}.gz`) and point the config at the .gz file.")
    return open(path, encoding="utf-8", errors="replace", newline=None)


def detect_format(path: str | os.PathLike) -> str:
    """'gtf' or 'gff3', from the header directive or the first data line's attribute syntax,
    then the file extension; anything else is an :class:`AnnotationError`."""
    path = Path(path)
    first = None
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if lineno > 1000:
                break
            if line.startswith("##gff-version"):
                version = line.split()[1] if len(line.split()) > 1 else ""
                return "gff3" if version.startswith("3") else "gtf"
            if line.startswith("#gtf-version"):
                return "gtf"
            if line.startswith(("#", "track ", "browser ")) or not line.strip():
                continue
            first = (lineno, line.rstrip("\r\n"))
            break
    if first is not None:
        cols = first[1].split("\t")
        if len(cols) >= 9:
            attr = cols[8].strip()
            if re.match(r'[A-Za-z_][\w.\-]*\s+("|[^=;\s]+\s*(;|$))', attr):
                return "gtf"
            if re.match(r"[^=;\s]+=", attr):
                return "gff3"
    name = path.name.lower()
    for suffix in (".gz", ".bgz"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    if first is not None and len(first[1].split("\t")) >= 9:
        if name.endswith(".gtf") or name.endswith(".gff2"):
            return "gtf"
        if name.endswith(".gff3") or name.endswith(".gff"):
            return "gff3"
    shown = repr(first[1][:120]) if first else "no data line"
    where = f", line {first[0]}" if first else ""
    raise AnnotationError(
        f"{path}{where}: cannot tell whether this is GTF or GFF3 ({shown}): expected 9 tab-separated "
        f"columns with attributes like `gene_id \"X\";` (GTF) or `ID=X;Parent=Y` (GFF3). "
        f"Fix: point references.<name>.annotation at a GTF (.gtf) or GFF3 (.gff3) file, optionally gzip/bgzip "
        f"compressed (BED, GenBank or FASTA annotations must be converted first, e.g. with AGAT or gffread).")


def _read_line(path: Path, lineno: int) -> str:
    with _open_text(path) as fh:
        for i, line in enumerate(fh, 1):
            if i == lineno:
                return line
    return ""


def _split_columns(line: str, path, lineno: int) -> list[str]:
    cols = line.rstrip("\r\n").split("\t")
    if len(cols) != 9:
        while len(cols) > 9 and not cols[-1].strip():  # tolerate trailing tabs
            cols.pop()
        if len(cols) != 9:
            hint = " (the line has spaces where tabs belong?)" if len(cols) == 1 and len(line.split()) >= 9 else ""
            raise _err(path, lineno, line, f"{len(cols)} tab-separated columns, GTF/GFF3 have 9{hint}",
                       "separate the 9 columns (seqid, source, type, start, end, score, strand, phase, attributes) "
                       "with single tabs, or remove the line")
    return cols


def _coords(s: str, e: str, line: str, path, lineno: int) -> tuple[int, int]:
    try:
        start = int(s)
        end = int(e)
    except ValueError:
        raise _err(path, lineno, line, f"start/end {s!r}/{e!r} are not integers",
                   "columns 4 and 5 must be 1-based integer coordinates") from None
    if start < 1:
        raise _err(path, lineno, line, f"start {start} < 1 (GTF/GFF3 coordinates are 1-based)",
                   "convert 0-based coordinates to 1-based (start + 1), or remove the line")
    if start > end:
        raise _err(path, lineno, line, f"start {start:,} > end {end:,}",
                   "swap start and end (the strand column gives the orientation), or remove the line")
    return start - 1, end
