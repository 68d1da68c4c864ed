"""Contig names harmonised once: aliases, then the chr-prefix policy, checked against the reference.

The reference FASTA's names (after its own ``contig_aliases``) are the canonical names. Every
other input (annotation, cooler, VCF) is mapped onto them with :class:`ContigMap` before any
compute; a name that cannot be mapped is reported with the input file and the fix.
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping


_MITO_NAMES = ("chrM", "chrMT", "M", "MT")
_ROMAN = {"i": 1, "v": 5, "x": 10, "l": 50}


def _toggle_chr(name: str) -> list[str]:
    """Names equal to ``name`` under the chr-prefix policy: with or without 'chr', and the four spellings
    of the mitochondrial genome (chrM, chrMT, M, MT) for one another."""
    if name in _MITO_NAMES:
        return [n for n in _MITO_NAMES if n != name]
    if name.lower().startswith("chr"):
        return [name[3:]]
    return ["chr" + name]


def _roman(text: str) -> int | None:
    if not text or any(ch not in _ROMAN for ch in text):
        return None
    total = 0
    for a, b in zip(text, text[1:] + " "):
        v = _ROMAN[a]
        total += -v if b in _ROMAN and _ROMAN[b] > v else v
    return total


def name_key(name: str) -> str:
    """A loose key under which the spellings of one chromosome agree: 'chr1', 'Chr01', '1' -> '1';
    'chrIV' (yeast) -> '4'; 'chrM', 'MT', 'chrMito' -> 'M'. Only for suggesting aliases, never for matching."""
    n = name.lower()
    for prefix in ("chromosome", "chrom", "chr"):
        if n.startswith(prefix):
            n = n[len(prefix):].lstrip("_")
            break
    if n in ("m", "mt", "mito", "mitochondrion"):
        return "M"
    if n.isdigit():
        return str(int(n))
    r = _roman(n)
    return str(r) if r else n


class ContigMap:
    """Map contig names of one input onto the reference's canonical names."""

    def __init__(self, reference_names: Iterable[str], aliases: Mapping[str, str] | None = None,
                 chr_prefix: str = "auto"):
        self.reference = list(reference_names)
        self._ref_set = set(self.reference)
        self.aliases = dict(aliases or {})
        if chr_prefix not in ("auto", "exact"):
            raise ValueError(f"chr_prefix={chr_prefix!r}; allowed: auto, exact")
        self.chr_prefix = chr_prefix

    def map(self, name: str) -> str | None:
        name = self.aliases.get(name, name)
        if name in self._ref_set:
            return name
        if self.chr_prefix == "auto":
            for alt in _toggle_chr(name):
                if alt in self._ref_set:
                    return alt
        return None

    def map_all(self, names: Iterable[str]) -> dict[str, str | None]:
        return {n: self.map(n) for n in names}

    def suggest_aliases(self, names: Iterable[str], targets: Iterable[str] | None = None,
                        lengths: Mapping[str, int] | None = None,
                        reference_lengths: Mapping[str, int] | None = None, limit: int = 3) -> str:
        """An alias map to show in a message: pairs of an input name and a reference name that are the same
        chromosome by their spelling (:func:`name_key`) or, when both are known, by their length. Unrelated
        names are never paired: without a plausible pair the example is a template."""
        targets = list(targets) if targets is not None else self.reference
        by_key: dict[str, list[str]] = {}
        for t in targets:
            by_key.setdefault(name_key(t), []).append(t)
        by_len: dict[int, list[str]] = {}
        for t in targets:
            if reference_lengths and t in reference_lengths:
                by_len.setdefault(int(reference_lengths[t]), []).append(t)
        pairs = {}
        for n in names:
            cands = by_key.get(name_key(n), [])
            if not cands and lengths and n in lengths:
                cands = by_len.get(int(lengths[n]), [])
            if len(cands) == 1:
                pairs[n] = cands[0]
            if len(pairs) >= limit:
                break
        if not pairs:
            return "{'<name in the file>': '<reference name>'}"
        return "{" + ", ".join(f"{a!r}: {b!r}" for a, b in pairs.items()) + "}"

    def unmapped_message(self, names: Iterable[str], source: str, key: str,
                         lengths: Mapping[str, int] | None = None,
                         reference_lengths: Mapping[str, int] | None = None) -> str:
        missing = [n for n in names if self.map(n) is None]
        hint = " or chr_prefix: auto" if self.chr_prefix == "exact" else ""
        return (f"{source}: contig(s) {', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''} "
                f"are not in the reference (which has {', '.join(self.reference[:6])}"
                f"{' ...' if len(self.reference) > 6 else ''}). Fix: add them to {key}.contig_aliases "
                f"(e.g. {self.suggest_aliases(missing, lengths=lengths, reference_lengths=reference_lengths)})"
                f"{hint}, or exclude them.")


def canonical_fasta_names(names: Iterable[str], aliases: Mapping[str, str] | None) -> list[str]:
    aliases = aliases or {}
    return [aliases.get(n, n) for n in names]


def select_contigs(names: Iterable[str], include: Iterable[str], exclude: Iterable[str]) -> list[str]:
    """Names that fully match an include pattern and no exclude pattern, in input order."""
    def compile_(pattern: str, key: str):
        try:
            return re.compile(pattern)
        except re.error as err:
            raise ValueError(f"{key} pattern {pattern!r} is not a valid regular expression ({err}). Fix: correct it "
                             "(Python regular expressions, matched against the whole contig name)") from None

    inc = [compile_(p, "include") for p in include]
    exc = [compile_(p, "exclude") for p in exclude]
    return [n for n in names if any(p.fullmatch(n) for p in inc) and not any(p.fullmatch(n) for p in exc)]
