"""Reference FASTA through pyfaidx: plain or bgzip, with pre-flight checks.

Input contract
--------------
* Plain text FASTA, or BGZF-compressed (``bgzip``) with its ``.fai`` (and ``.gzi``); a missing
  index is built. Plain gzip cannot be read at random and is refused with the fix.
* Record names are the first word of the header line; duplicates and empty records are errors.
* Letters: see :mod:`genoattn.alphabet`. Positions in messages are 1-based (what a user sees in
  a genome browser); everything returned is 0-based.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from genoattn import alphabet


class FastaError(ValueError):
    """Bad FASTA input; the message names the file, the record and the fix."""


@dataclass(frozen=True)
class FaiRecord:
    name: str
    length: int


def compression(path: str | os.PathLike) -> str:
    """'plain', 'bgzf' or 'gzip' from the first bytes of the file."""
    with open(path, "rb") as fh:
        head = fh.read(18)
    if head[:2] != b"\x1f\x8b":
        return "plain"
    # BGZF = gzip member with FEXTRA and a 'BC' subfield (SAM spec 4.1)
    if len(head) >= 16 and head[3] & 4 and head[12:14] == b"BC":
        return "bgzf"
    return "gzip"


def check_readable(path: str | os.PathLike) -> None:
    path = Path(path)
    if not path.exists():
        raise FastaError(f"{path}: FASTA file not found")
    if compression(path) == "gzip":
        raise FastaError(
            f"{path}: gzip-compressed but not with bgzip, so it cannot be indexed for random access. "
            f"Fix: recompress it with bgzip (from htslib/samtools): "
            f"`zcat {path} | bgzip -c > {path.with_suffix('')}.bgz.gz && samtools faidx {path.with_suffix('')}.bgz.gz`, "
            f"or decompress it (`gunzip {path}`) and point the config at the plain file.")


def _open(path: str | os.PathLike):
    import pyfaidx

    check_readable(path)
    try:
        return pyfaidx.Fasta(str(path), as_raw=True, sequence_always_upper=False, duplicate_action="stop",
                             rebuild=False, build_index=True)
    except ValueError as exc:
        msg = str(exc)
        if msg.startswith("Duplicate key"):
            name = msg.split('"')[1] if '"' in msg else msg
            _remove_index_we_built(path)
            raise FastaError(f"{path}: contig name {name!r} occurs more than once. Fix: rename or remove the "
                             f"duplicate record (names are the first word of each '>' line), then delete "
                             f"{path}.fai if it exists.") from None
        raise FastaError(f"{path}: cannot be indexed ({msg}). Fix: check that every record has lines of equal "
                         f"length (reformat with `seqkit seq -w 60` or `samtools faidx`).") from None
    except pyfaidx.FastaIndexingError as exc:
        raise FastaError(f"{path}: cannot be indexed ({exc}). Fix: reformat with `samtools faidx` or "
                         f"`seqkit seq -w 60` so all sequence lines of a record have the same length.") from None


def _remove_index_we_built(path) -> None:
    # pyfaidx writes the .fai before it notices duplicates; a stale index would hide the error next time
    for suffix in (".fai",):
        p = Path(str(path) + suffix)
        if p.exists():
            try:
                names = [line.split("\t", 1)[0] for line in p.read_text().splitlines()]
            except OSError:
                continue
            if len(names) != len(set(names)):
                p.unlink()


def fasta_index(path: str | os.PathLike) -> list[FaiRecord]:
    """Records (name, length) in file order; builds the index if missing; checks duplicates
    and empty records."""
    fa = _open(path)
    try:
        records = [FaiRecord(name, len(fa.faidx.index[name])) for name in fa.keys()]
    finally:
        fa.close()
    empty = [r.name for r in records if r.length == 0]
    if empty:
        raise FastaError(f"{path}: contig {empty[0]!r} is empty (0 bp){' (and ' + str(len(empty) - 1) + ' more)' if len(empty) > 1 else ''}. "
                         f"Fix: remove the empty record(s) from the FASTA, or check that the file was not truncated.")
    return records


def iter_chunks(path: str | os.PathLike, name: str, chunk_size: int) -> Iterator[tuple[int, bytes]]:
    """Yield ``(start, raw letters)`` of a record in chunks of ``chunk_size`` bases (0-based)."""
    fa = _open(path)
    try:
        rec = fa[name]
        n = len(rec)
        for start in range(0, n, chunk_size):
            seq = rec[start:min(n, start + chunk_size)]
            yield start, seq.encode("ascii") if isinstance(seq, str) else bytes(seq)
    finally:
        fa.close()


def encode_chunk(raw: bytes, path, name: str, start: int) -> tuple[np.ndarray, np.ndarray]:
    """Encode one chunk; an invalid letter raises with contig and 1-based position."""
    tokens, softmask = alphabet.encode(raw)
    bad = alphabet.first_invalid(tokens)
    if bad is not None:
        letter = chr(raw[bad])
        shown = repr(letter) if letter.isprintable() else f"byte 0x{raw[bad]:02x}"
        raise FastaError(
            f"{path}: invalid character {shown} in contig {name!r} at position {start + bad + 1:,} (1-based). "
            f"Allowed: A C G T N and IUPAC codes R Y S W K M B D H V, in either case. "
            f"Fix: replace it (e.g. with N), or check that the file is a DNA FASTA.")
    return tokens, softmask
