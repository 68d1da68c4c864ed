"""Reference FASTA through pyfaidx: plain or bgzip, with pre-flight checks.

Input contract
--------------
* Plain text FASTA, or BGZF-compressed (``bgzip``) with its ``.fai`` (and ``.gzi``); a missing
  index is built. Plain gzip cannot be read at random and is refused with the fix.
* Record names are the first word of the header line; duplicates and empty records are errors.
* An existing index must match the file: every record's header line must sit where the ``.fai`` says
  (checked on every open, a few bytes per record), so an index left over from before the FASTA was
  re-wrapped, edited or recompressed is an error naming the index, never wrong sequence. A truncated
  or corrupt file is an error naming the file, not a traceback.
* Letters: see :mod:`genoattn.alphabet`. Positions in messages are 1-based (what a user sees in
  a genome browser); everything returned is 0-based.
"""

from __future__ import annotations

import os
import struct
import warnings
import zlib
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
        raise FastaError(f"{path}: FASTA file not found. Fix: check references.<name>.fasta")
    if path.stat().st_size == 0:
        raise FastaError(f"{path}: the file is empty (0 bytes). Fix: point references.<name>.fasta at the genome "
                         "FASTA, or download/copy it again (an interrupted transfer?)")
    if compression(path) == "gzip":
        raise FastaError(
            f"{path}: gzip-compressed but not with bgzip, so it cannot be indexed for random access. "
            f"Fix: recompress it with bgzip (from htslib/samtools): "
            f"`zcat {path} | bgzip -c > {path.with_suffix('')}.bgz.gz && samtools faidx {path.with_suffix('')}.bgz.gz`, "
            f"or decompress it (`gunzip {path}`) and point the config at the plain file.")


#: errors of reading a truncated or corrupt (b)gzip file through Bio.bgzf / zlib / pyfaidx
_READ_ERRORS = (struct.error, EOFError, zlib.error, OSError, UnicodeDecodeError)


def _index_files(path) -> str:
    return " and ".join(str(p) for p in (f"{path}.fai", f"{path}.gzi") if os.path.exists(p))


def _verify_index(fa, path, max_checked: int = 5000) -> None:
    """Every record's header line (or an even sample of ``max_checked`` of them) sits where the index says,
    and (plain text) the last record ends where the file ends."""
    names = list(fa.faidx.index)
    if names and not fa.faidx._bgzf:
        last = fa.faidx.index[names[-1]]
        extra = os.path.getsize(path) - int(last.bend)
        if not 0 <= extra <= 2:  # at most the last line's newline (\n or \r\n) after the last base
            raise FastaError(
                f"{path}: its index {_index_files(path)} does not match the file: the last record {names[-1]!r} "
                f"ends at byte {last.bend:,} by the index but the file has {os.path.getsize(path):,} bytes. The "
                f"FASTA was edited after it was indexed. Fix: delete {_index_files(path)} (genoattn rebuilds it), "
                f"or run `samtools faidx {path}`")
    if len(names) > max_checked:
        names = [names[int(i)] for i in np.linspace(0, len(names) - 1, max_checked)]
    for name in names:
        try:
            header = fa.faidx.get_long_name(name)
        except (*_READ_ERRORS, ValueError, IndexError) as exc:
            header, error = None, exc
        else:
            error = None
        if header is None or not header.split() or header.split()[0] != name:
            found = repr(header[:40]) if header else f"{type(error).__name__}: {error}"
            raise FastaError(
                f"{path}: its index {_index_files(path)} does not match the file: the header of record {name!r} "
                f"is not where the index puts it (found {found}). The FASTA was re-wrapped, edited or recompressed "
                f"after it was indexed. Fix: delete {_index_files(path)} (genoattn rebuilds it), or run "
                f"`samtools faidx {path}`")


def _open(path: str | os.PathLike):
    import pyfaidx

    check_readable(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "index is older than": checked by content below
            fa = pyfaidx.Fasta(str(path), as_raw=True, sequence_always_upper=False, duplicate_action="stop",
                               rebuild=False, build_index=True)
    except _READ_ERRORS as exc:
        raise FastaError(f"{path}: cannot be read ({type(exc).__name__}: {exc}); the file is truncated or corrupt. "
                         f"Fix: check it with `bgzip -t {path}` (or `gzip -t`), download or copy it again, and delete "
                         "a .fai/.gzi made from the broken file") from None
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
    try:
        _verify_index(fa, path)
    except BaseException:
        fa.close()
        raise
    return fa


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
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive number of bases, not {chunk_size}")
    fa = _open(path)
    try:
        rec = fa[name]
        n = len(rec)
        for start in range(0, n, chunk_size):
            try:
                seq = rec[start:min(n, start + chunk_size)]
            except _READ_ERRORS as exc:
                raise FastaError(f"{path}: contig {name!r} cannot be read from position {start + 1:,} (1-based) "
                                 f"({type(exc).__name__}: {exc}); the file is truncated or corrupt. Fix: check it "
                                 f"with `bgzip -t {path}`, download or copy it again, and delete "
                                 f"{_index_files(path) or 'its .fai/.gzi'}") from None
            yield start, seq.encode("ascii") if isinstance(seq, str) else bytes(seq)
    finally:
        fa.close()


def encode_chunk(raw: bytes, path, name: str, start: int) -> tuple[np.ndarray, np.ndarray]:
    """Encode one chunk; an invalid letter raises with contig and 1-based position."""
    tokens, softmask = alphabet.encode(raw)
    bad = alphabet.first_invalid(tokens)
    if bad is not None and raw[bad:bad + 1] in (b">", b"\n", b"\r"):
        raise FastaError(
            f"{path}: a header or line break in the middle of contig {name!r} (at position {start + bad + 1:,}, "
            f"1-based): the index {_index_files(path) or '.fai'} does not describe this file (lines of unequal "
            f"length, or the FASTA changed after it was indexed). Fix: delete {_index_files(path) or 'the .fai'} "
            f"and rerun (or `samtools faidx {path}`); if that fails, reformat with `seqkit seq -w 60`")
    if bad is not None:
        letter = chr(raw[bad])
        shown = repr(letter) if letter.isprintable() else f"byte 0x{raw[bad]:02x}"
        raise FastaError(
            f"{path}: invalid character {shown} in contig {name!r} at position {start + bad + 1:,} (1-based). "
            f"Allowed: A C G T N and IUPAC codes R Y S W K M B D H V, in either case. "
            f"Fix: replace it (e.g. with N), or check that the file is a DNA FASTA.")
    return tokens, softmask
