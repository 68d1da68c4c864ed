"""Paths and fan-out of the Snakemake workflow, kept in Python so the rule files stay thin.

The results layout is a public interface (README.md, DESIGN.md): change it only with a note there.
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path

from genoattn.contigs import canonical_fasta_names, select_contigs


class Layout:
    def __init__(self, config: dict):
        self.config = config
        self.results = config.get("results", "results")

    @property
    def references(self) -> list[str]:
        return list(self.config["references"])

    @property
    def cohorts(self) -> list[str]:
        return list(self.config.get("cohorts", {}))

    @staticmethod
    def wildcard_pattern(names: list[str]) -> str:
        return "|".join(re.escape(n) for n in names) if names else "(?!x)x"

    def ref(self, reference: str) -> dict:
        return self.config["references"][reference]

    def level(self, name: str) -> dict:
        return self.config["levels"][name]

    @cached_property
    def _contigs(self) -> dict[str, list[str]]:
        from genoattn.io.fasta import fasta_index

        out = {}
        for name, ref in self.config["references"].items():
            names = [rec.name for rec in fasta_index(ref["fasta"])]
            canonical = canonical_fasta_names(names, ref.get("contig_aliases"))
            out[name] = select_contigs(canonical, ref["include"], ref["exclude"])
        return out

    def contigs(self, reference: str) -> list[str]:
        """Canonical contig names of a reference selected by include/exclude (from the .fai)."""
        return self._contigs[reference]

    # -- paths (results layout) ---------------------------------------------------------------
    def path(self, *parts: str) -> str:
        return str(Path(self.results, *parts))

    def per_contig(self, reference: str, pattern: str) -> list[str]:
        """Expand ``pattern`` (e.g. 'level1/{contig}.zarr') over the reference's contigs."""
        return [self.path(reference, pattern.format(contig=c)) for c in self.contigs(reference)]

    # -- split genotype conversion (cohorts.<name>.split_bp) -------------------------------------
    def genotype_parts(self, cohort: str) -> list[str]:
        """Regions of the pieces of a split conversion, in VCF order; [] when the cohort is not split,
        or its VCF has no index yet (the one conversion job then fails with the command that makes it)."""
        from genoattn.io.vcf import index_path
        from genoattn.io.vcf_parts import plan_parts

        c = self.config["cohorts"][cohort]
        if not c.get("split_bp") or not index_path(c["vcf"]):
            return []
        cache = self.__dict__.setdefault("_parts", {})
        if cohort not in cache:
            cache[cohort] = plan_parts(c["vcf"], c["split_bp"], c.get("regions"))
        return cache[cohort]

    def genotype_part_paths(self, cohort: str) -> list[str]:
        return [self.path(cohort, "genotypes_parts", f"p{i:05d}.zarr") for i in range(len(self.genotype_parts(cohort)))]

