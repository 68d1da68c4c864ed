"""Hi-C contact matrices through cooler: .cool / .mcool, balancing weights, contig matching.

Input contract
--------------
* A ``.cool`` file (one resolution) or a multi-resolution file: an ``.mcool`` (``resolutions/{bp}``
  groups), or a legacy one whose zoom levels are numeric groups (``/0``, ``/1``, ...; each group's
  bin size is its resolution). ``references.{ref}.hic_resolution`` picks the resolution (default
  10000 when the file has it, else it must be set); a resolution that is not in the file is an
  error listing the available ones. For a .cool, a configured resolution must equal its bin size.
* Balancing weights are a bin-table column named by ``references.{ref}.hic_balance`` (``weight``
  from ``cooler balance``; ``KR``, ``VC``, ... from other tools). Weights are multiplicative
  (balanced = count x w_i x w_j), as ``cooler balance`` writes them, unless they are divisive:
  the column's ``divisive_weights`` attribute says so, else the names ``KR``, ``VC`` and
  ``VC_SQRT`` are divisive (Juicer .hic converted with hic2cool, the 4DN portal), as cooler's own
  ``Cooler.matrix(balance=...)`` assumes; divisive weights are inverted on reading. A selected contig
  with more than ``levels.hic.max_masked_fraction`` of its bins masked is an error. When the column is missing,
  ``levels.hic.balance_missing`` decides: ``error`` stops with the exact ``cooler balance``
  command, ``balance`` computes the weights in memory with :func:`cooler.balance_cooler`
  (``store=False``; the user's file is never modified; not converging is an error). Bins whose
  weight is NaN (or zero, for divisive weights) are masked.
* Chromosome names are mapped onto the reference's canonical names with
  :class:`genoattn.contigs.ContigMap` (aliases, then the chr-prefix policy). Cooler chromosomes
  that map to no reference contig (e.g. yeast ``chrMito``/``chr2-micron`` when the FASTA lacks
  them, or contigs excluded from the run) are simply not used. A selected reference contig that
  is absent from the cooler is an error naming it (``levels.hic.missing_contig: skip`` writes a
  fully masked graph instead). A chromosome length that differs from the reference by less than
  one bin is a warning; more is an error listing both lengths.
* Bins are the reference's: ``ceil(reference_length / resolution)`` bins per contig, the last
  clipped to the reference length. Cooler bins past the reference end are ignored; reference
  bins past the cooler's end are masked.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from genoattn.contigs import ContigMap

log = logging.getLogger("genoattn.hic")

DEFAULT_MCOOL_RESOLUTION = 10000


class HicError(ValueError):
    """Bad Hi-C input; the message names the file, the record and the fix."""


def _cooler():
    import cooler
    return cooler


def _is_cooler_group(grp) -> bool:
    return all(k in grp for k in ("bins", "chroms", "pixels", "indexes"))


def _zoom_groups(path: str | os.PathLike) -> dict[int, str]:
    """Resolution (bp) -> group of every cooler inside a multi-resolution file: ``resolutions/{bp}``
    (.mcool) or legacy numeric zoom groups ``/0``, ``/1``, ... (whose resolution is their bin size)."""
    import h5py

    out: dict[int, str] = {}
    with h5py.File(str(path), "r") as f:
        if "resolutions" in f:
            for k in f["resolutions"]:
                if k.isdigit() and _is_cooler_group(f["resolutions"][k]):
                    out[int(k)] = f"resolutions/{k}"
        else:
            for k in f:
                grp = f[k]
                if k.isdigit() and isinstance(grp, h5py.Group) and _is_cooler_group(grp):
                    binsize = grp.attrs.get("bin-size")
                    if binsize is None:
                        binsize = int(grp["bins"]["end"][0] - grp["bins"]["start"][0])
                    out[int(binsize)] = k
    return dict(sorted(out.items()))


def available_resolutions(path: str | os.PathLike) -> list[int]:
    """Resolutions of a multi-resolution cooler file ([] for a single .cool)."""
    return list(_zoom_groups(path))


def _looks_like_cooler(path) -> bool:
    import h5py
    if not h5py.is_hdf5(str(path)):
        return False
    with h5py.File(str(path), "r") as f:
        return _is_cooler_group(f)


def open_cooler(path: str | os.PathLike, resolution: int | None = None):
    """Open ``path`` at ``resolution``; return ``(Cooler, uri, resolution)``."""
    cooler = _cooler()
    path = Path(path)
    if not path.exists():
        raise HicError(f"{path}: Hi-C file not found. Fix: point references.<name>.hic at a .cool/.mcool file.")
    import h5py
    if not h5py.is_hdf5(str(path)):
        raise HicError(f"{path}: not a cooler (.cool/.mcool, HDF5) file. Fix: convert it with `cooler load` or "
                       f"hic2cool.")
    try:
        zooms = {} if _looks_like_cooler(path) else _zoom_groups(path)
        if zooms:
            avail = ", ".join(map(str, zooms))
            if resolution is None:
                if len(zooms) == 1:
                    res = next(iter(zooms))
                elif DEFAULT_MCOOL_RESOLUTION in zooms:
                    res = DEFAULT_MCOOL_RESOLUTION
                else:
                    raise HicError(f"{path}: references.<name>.hic_resolution is not set and this multi-resolution "
                                   f"file has no {DEFAULT_MCOOL_RESOLUTION} bp level (the default); available "
                                   f"resolutions: {avail}. Fix: set references.<name>.hic_resolution to one of them.")
            else:
                res = int(resolution)
                if res not in zooms:
                    raise HicError(
                        f"{path}: resolution {res} bp (references.<name>.hic_resolution) is not in this file; "
                        f"available resolutions: {avail}. Fix: set hic_resolution to one of them (or make it "
                        f"with `cooler zoomify -r {res} <base>.cool`).")
            uri = f"{path}::{zooms[res]}"
        elif _looks_like_cooler(path):
            uri = str(path)
        else:
            raise HicError(f"{path}: no cooler inside this HDF5 file (no bins/chroms/pixels/indexes groups). Fix: "
                           "convert it with `cooler load` or hic2cool.")
        clr = cooler.Cooler(uri)
        binsize = clr.binsize
    except (OSError, KeyError) as exc:
        raise HicError(f"{path}: cannot be read as a cooler ({type(exc).__name__}: {exc}); the file is truncated or "
                       "corrupt. Fix: download or convert it again, and check it with `cooler info`.") from None
    if binsize is None:
        raise HicError(f"{uri}: variable-size bins are not supported. Fix: use a fixed-resolution cooler.")
    if resolution is not None and not zooms and int(resolution) != int(binsize):
        raise HicError(f"{path}: resolution {resolution} bp requested but this .cool has only {binsize} bp; "
                       f"available resolutions: {binsize}. Fix: set references.<name>.hic_resolution to "
                       f"{binsize} or null, or use an .mcool with the resolution you need.")
    return clr, uri, int(binsize)


def check_pixels_readable(clr, uri: str) -> None:
    """Cheap integrity check of the pixel table (the pre-flight runs it): the index covers the table and
    its last rows can be read, so a truncated or corrupt file stops before any job, not inside one."""
    try:
        with clr.open("r") as grp:
            n = int(grp["pixels"]["bin1_id"].shape[0])
            offsets = grp["indexes"]["bin1_offset"]
            last = int(offsets[offsets.shape[0] - 1])
            for col in ("bin1_id", "bin2_id", "count"):
                if grp["pixels"][col].shape[0] != n:
                    raise ValueError(f"pixels/{col} has {grp['pixels'][col].shape[0]} rows, bin1_id {n}")
                if n:
                    np.asarray(grp["pixels"][col][max(0, n - 1024):n])
    except (OSError, KeyError, ValueError) as exc:
        raise HicError(f"{uri}: the pixel table cannot be read ({type(exc).__name__}: {exc}); the file is truncated "
                       "or corrupt. Fix: download or convert it again, and check it with `cooler info`.") from None
    if last != n:
        raise HicError(f"{uri}: the pixel index (indexes/bin1_offset) ends at row {last} but the pixel table has {n} "
                       "rows; the file is truncated or corrupt. Fix: download or convert it again.")


def balance_command(uri: str, name: str) -> str:
    """The shell command that balances a copy of the cooler (cooler balance writes in place)."""
    path, _, group = uri.partition("::")
    p = Path(path)
    copy = p.with_name(p.stem + ".balanced" + p.suffix)
    target = f"{copy}::{group}" if group else str(copy)
    return f"cp {path} {copy} && cooler balance --name {name} {target}"


#: Weight columns that are divisive unless the column says otherwise (cooler's own convention).
DIVISIVE_WEIGHT_NAMES = ("KR", "VC", "VC_SQRT")


def weights_are_divisive(name: str, attrs) -> bool:
    """The column's ``divisive_weights`` attribute when present, else whether the name is KR/VC/VC_SQRT."""
    if "divisive_weights" in attrs:
        return bool(attrs["divisive_weights"])
    return name in DIVISIVE_WEIGHT_NAMES


def load_weights(clr, uri: str, balance: str, missing: str = "error", max_iters: int = 200) -> tuple[np.ndarray, str]:
    """Genome-wide multiplicative balancing weights (float64, NaN = masked bin) and where they came from."""
    cols = list(clr.bins().columns)
    if balance in cols:
        with clr.open("r") as grp:
            column = grp["bins"][balance]
            w = np.asarray(column[:], dtype=np.float64)
            divisive = weights_are_divisive(balance, column.attrs)
        if divisive:  # balanced = count / (w_i w_j): invert once, so the graph code multiplies
            with np.errstate(divide="ignore"):
                w = np.where(np.isfinite(w) & (w != 0), 1.0 / w, np.nan)
            return w, f"column:{balance} (divisive, inverted)"
        return w, f"column:{balance}"
    extra = [c for c in cols if c not in ("chrom", "start", "end")]
    if missing == "error":
        raise HicError(
            f"{uri}: no balancing-weight column {balance!r} in the bin table (columns: "
            f"{', '.join(extra) or 'none besides chrom/start/end'}). Fix: set references.<name>.hic_balance "
            f"to the column your tool wrote (KR, VC, ...), or balance a copy with cooler: "
            f"`{balance_command(uri, balance)}` and point the config at the copy, or set "
            f"levels.hic.balance_missing: balance to balance in memory.")
    if missing != "balance":
        raise ValueError(f"balance_missing={missing!r}; allowed: error, balance")
    cooler = _cooler()
    log.warning("%s: no %r weights; balancing in memory with cooler.balance_cooler (the file is not modified)",
                uri, balance)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bias, stats = cooler.balance_cooler(clr, store=False, chunksize=10_000_000, max_iters=int(max_iters))
    if not stats.get("converged", True):
        raise HicError(
            f"{uri}: in-memory balancing did not converge in {max_iters} iterations (variance {stats.get('var'):.3g}, "
            f"tolerance {stats.get('tol'):.3g}), so the weights would be wrong. Fix: raise "
            "levels.hic.balance_max_iters, or balance a copy with cooler and look at its report: "
            f"`{balance_command(uri, balance)} --max-iters 1000`")
    return np.asarray(bias, dtype=np.float64), "cooler.balance_cooler(in memory)"


def check_masked_fraction(src: "HicSource", contigs: list[str], limit: float) -> None:
    """Stop when a selected contig has more than ``limit`` of its bins masked (NaN weight or past the
    cooler's end): its graph would be (almost) only self loops. Contigs absent from the cooler on purpose
    (levels.hic.missing_contig: skip) are left alone."""
    bad = []
    for c in contigs:
        m = src.contigs[c]
        if m.cooler is None:
            continue
        masked = src.bins(c)["masked"]
        frac = float(masked.mean()) if len(masked) else 0.0
        if frac > limit:
            bad.append(f"{c} ({int(masked.sum())} of {len(masked)} bins, {frac:.0%})")
    if bad:
        raise HicError(
            f"{src.uri}: balancing weights {src.balance!r} mask more than {limit:.0%} (levels.hic.max_masked_fraction) "
            f"of the bins of {', '.join(bad)}; their contact graphs would be almost only self loops. Fix: check the "
            f"weights (a failed or partial `cooler balance`; `cooler balance --force` on a copy), exclude the "
            f"contig(s) with references.<name>.exclude, or raise levels.hic.max_masked_fraction.")


@dataclass
class ContigMatch:
    reference: str            # canonical reference name
    cooler: str | None        # cooler chromosome name (None: absent, skipped)
    reference_length: int
    cooler_length: int | None
    lo: int = 0               # cooler bin extent of the chromosome
    hi: int = 0


@dataclass
class HicSource:
    """An opened cooler at one resolution, matched to the reference contigs."""
    path: str
    uri: str
    clr: object
    resolution: int
    balance: str
    weights: np.ndarray
    weights_source: str
    contigs: dict[str, ContigMatch] = field(default_factory=dict)
    unused_cooler_chroms: list[str] = field(default_factory=list)

    def bins(self, contig: str) -> dict[str, np.ndarray]:
        """The reference's bin table of ``contig`` with weights and mask (see module doc)."""
        m = self.contigs[contig]
        res = self.resolution
        n = -(-m.reference_length // res)
        start = np.arange(n, dtype=np.int64) * res
        end = np.minimum(start + res, m.reference_length).astype(np.int64)
        weight = np.full(n, np.nan)
        if m.cooler is not None:
            k = min(n, m.hi - m.lo)
            weight[:k] = self.weights[m.lo:m.lo + k]
        return {"chrom": np.array([contig] * n, dtype=object), "start": start, "end": end,
                "weight": weight, "masked": ~np.isfinite(weight)}


def match_contigs(clr, uri: str, reference_lengths: Mapping[str, int], contigs: list[str],
                  aliases: Mapping[str, str] | None = None, chr_prefix: str = "auto",
                  missing_contig: str = "error") -> tuple[dict[str, ContigMatch], list[str]]:
    """Map cooler chromosomes to the reference and check the ``contigs`` that will be used."""
    binsize = int(clr.binsize)
    cmap = ContigMap(list(reference_lengths), aliases, chr_prefix)
    sizes = clr.chromsizes
    to_ref: dict[str, str] = {}
    unused = []
    for name in clr.chromnames:
        ref = cmap.map(name)
        if ref is None:
            unused.append(name)
        elif ref in to_ref.values():
            other = [k for k, v in to_ref.items() if v == ref][0]
            raise HicError(f"{uri}: chromosomes {other!r} and {name!r} both map to reference contig {ref!r}. "
                           f"Fix: correct references.<name>.contig_aliases or set chr_prefix: exact.")
        else:
            to_ref[name] = ref
    by_ref = {v: k for k, v in to_ref.items()}
    out: dict[str, ContigMatch] = {}
    absent = [c for c in contigs if c not in by_ref]
    if absent and missing_contig == "error":
        raise HicError(
            f"{uri}: reference contig(s) {', '.join(absent)} are not in the cooler (its chromosomes: "
            f"{', '.join(clr.chromnames[:20])}{' ...' if len(clr.chromnames) > 20 else ''}; chr_prefix="
            f"{chr_prefix}). Fix: map the cooler's names with references.<name>.contig_aliases "
            f"(e.g. {cmap.suggest_aliases(unused, absent, clr.chromsizes.to_dict(), reference_lengths)})"
            f"{' or chr_prefix: auto' if chr_prefix == 'exact' else ''}, exclude the "
            f"contig(s) with references.<name>.exclude, or set levels.hic.missing_contig: skip.")
    problems = []
    for c in contigs:
        rlen = int(reference_lengths[c])
        name = by_ref.get(c)
        if name is None:
            log.warning("%s: reference contig %s is not in the cooler; its graph is fully masked "
                        "(levels.hic.missing_contig: skip)", uri, c)
            out[c] = ContigMatch(c, None, rlen, None)
            continue
        clen = int(sizes[name])
        lo, hi = clr.extent(name)
        diff = abs(clen - rlen)
        if diff >= binsize:
            problems.append(f"{c} (cooler {name!r}): reference length {rlen} bp, cooler length {clen} bp "
                            f"(differ by {diff} bp >= one {binsize} bp bin)")
        elif diff:
            msg = (f"{uri}: chromosome {name!r} is {clen} bp in the cooler but {c} is {rlen} bp in the reference "
                   f"(differ by {diff} bp < one {binsize} bp bin); using the reference's bins")
            log.warning(msg)
        out[c] = ContigMatch(c, name, rlen, clen, int(lo), int(hi))
    if problems:
        raise HicError(f"{uri}: the Hi-C data was made on another assembly: " + "; ".join(problems) +
                       ". Fix: use a cooler made on the same reference assembly as the FASTA.")
    return out, unused


def open_hic(path: str | os.PathLike, reference_lengths: Mapping[str, int], contigs: list[str], *,
             resolution: int | None, balance: str, balance_missing: str, aliases: Mapping[str, str] | None,
             chr_prefix: str, missing_contig: str, max_masked_fraction: float,
             balance_max_iters: int) -> HicSource:
    """Open, pick the resolution, match contigs (cheap checks first), load the weights, check the mask."""
    clr, uri, res = open_cooler(path, resolution)
    matches, unused = match_contigs(clr, uri, reference_lengths, contigs, aliases, chr_prefix, missing_contig)
    if unused:
        log.info("%s: cooler chromosomes not used (not reference contigs of this run): %s", uri, ", ".join(unused))
    weights, source = load_weights(clr, uri, balance, balance_missing, balance_max_iters)
    src = HicSource(str(path), uri, clr, res, balance, weights, source, matches, unused)
    check_masked_fraction(src, contigs, max_masked_fraction)
    return src


def hic_options(ref: dict, hic_cfg: dict) -> dict:
    """The keyword arguments of :func:`open_hic` from a reference entry and the ``levels.hic`` section."""
    return {"resolution": ref["hic_resolution"], "balance": ref["hic_balance"],
            "balance_missing": hic_cfg["balance_missing"], "aliases": ref["contig_aliases"],
            "chr_prefix": ref["chr_prefix"], "missing_contig": hic_cfg["missing_contig"],
            "max_masked_fraction": hic_cfg["max_masked_fraction"], "balance_max_iters": hic_cfg["balance_max_iters"]}


def reference_lengths(fasta: str | os.PathLike, aliases: Mapping[str, str] | None = None) -> dict[str, int]:
    """Canonical contig name -> length from the FASTA index."""
    from genoattn.io.fasta import fasta_index
    aliases = aliases or {}
    return {aliases.get(r.name, r.name): int(r.length) for r in fasta_index(fasta)}


def read_bedpe(path: str | os.PathLike) -> list[tuple[str, int, int, str, int, int, int]]:
    """BEDPE rows (0-based half-open): (chrom1, start1, end1, chrom2, start2, end2, line number)."""
    from genoattn.io.bedlike import iter_records

    rows = []
    for n, f in iter_records(path):
        if len(f) < 6:
            raise HicError(f"{path}: line {n}: BEDPE needs 6 tab-separated columns (chrom1 start1 end1 chrom2 "
                           f"start2 end2), found {len(f)}. Fix: convert the file to BEDPE.")
        try:
            s1, e1, s2, e2 = int(f[1]), int(f[2]), int(f[4]), int(f[5])
        except ValueError:
            raise HicError(f"{path}: line {n}: start/end columns are not integers ({f[1]!r}, {f[2]!r}, "
                           f"{f[4]!r}, {f[5]!r}). Fix: write 0-based integer coordinates.") from None
        if s1 < 0 or s2 < 0 or e1 < s1 or e2 < s2:
            raise HicError(f"{path}: line {n}: invalid interval(s) {f[0]}:{s1}-{e1}, {f[3]}:{s2}-{e2}. "
                           f"Fix: BEDPE intervals are 0-based half-open with start <= end.")
        rows.append((f[0], s1, e1, f[3], s2, e2, n))
    return rows
