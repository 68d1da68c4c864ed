"""Contig names harmonised once: aliases, then the chr-prefix policy, checked against the reference.

The reference FASTA's names (after its own ``contig_aliases``) are the canonical names. Every
other input (annotation, cooler, VCF) is mapped onto them with :class:`ContigMap` before any
compute; a name that cannot be mapped is reported with the input file and the fix.
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping


def _toggle_chr(name: str) -> list[str]:
    alts = []
    if name.lower().startswith("chr"):
        base = name[3:]
        alts.append(base)
        if base in ("M", "MT"):
            alts += ["MT", "M"]
    else:
        alts.append("chr" + name)
        if name in ("MT", "M"):
            alts += ["chrM", "chrMT"]
    return alts


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

    def unmapped_message(self, names: Iterable[str], source: str, key: str) -> str:
        missing = [n for n in names if self.map(n) is None]
        return (f"{source}: contig(s) {', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''} "
                f"are not in the reference (which has {', '.join(self.reference[:6])}"
                f"{' ...' if len(self.reference) > 6 else ''}). Fix: add them to {key}.contig_aliases "
                f"(e.g. {{{missing[0]!r}: {self.reference[0]!r}}}) or exclude them.")


def canonical_fasta_names(names: Iterable[str], aliases: Mapping[str, str] | None) -> list[str]:
    aliases = aliases or {}
    return [aliases.get(n, n) for n in names]


def select_contigs(names: Iterable[str], include: Iterable[str], exclude: Iterable[str]) -> list[str]:
    """Names that fully match an include pattern and no exclude pattern, in input order."""
    inc = [re.compile(p) for p in include]
    exc = [re.compile(p) for p in exclude]
    return [n for n in names if any(p.fullmatch(n) for p in inc) and not any(p.fullmatch(n) for p in exc)]
