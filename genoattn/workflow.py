"""Paths and fan-out of the workflow (contigs, genotype pieces, level-6 shards), from a validated config.

Read by the job specification (:mod:`genoattn.jobs`), hence by the Snakemake rules and the CLI alike.
The results layout is a public interface (README.md, DESIGN.md): change it only with a note there.
Imports no torch: the workflow is parsed (and a cluster job re-parses it) with this module only.
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path

from genoattn.contigs import canonical_fasta_names, select_contigs


class Layout:
    def __init__(self, config: dict):
        self.config = config
        self.results = config["results"]

    @property
    def references(self) -> list[str]:
        return list(self.config["references"])

    @property
    def cohorts(self) -> list[str]:
        return list(self.config["cohorts"])

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
            canonical = canonical_fasta_names(names, ref["contig_aliases"])
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

    def checkpoint(self, level: str, owner: str) -> str | None:
        """The checkpoint file a level loads: ``levels.<level>.checkpoint`` as a path, the workflow's own
        training output for ``train`` (results/{owner}/train/<level>/model.safetensors), or None (seeded)."""
        value = self.level(level)["checkpoint"]
        if value == "train":
            if level == "level6":  # every cohort loads the training output of the cohort that trains
                owner = self.level6_training_cohort(owner)
            return self.path(owner, "train", level, "model.safetensors")
        return value or None

    def level6_training_cohort(self, cohort: str) -> str:
        """The cohort whose training output level 6 of ``cohort`` loads with ``checkpoint: train``: the cohort
        itself when it has ``held_out``, else the one cohort that has (config validation ensures one)."""
        cohorts = self.config["cohorts"]
        if cohorts[cohort]["held_out"]:
            return cohort
        trained = [c for c in cohorts if cohorts[c]["held_out"]]
        return trained[0] if trained else cohort

    def weights_label(self, level: str, owner: str) -> str:
        """'trained (path)' or 'untrained (seeded weights)' for a level's figures and captions (a checkpoint
        file says whether it was trained in its metadata; the workflow's own training output is)."""
        path = self.checkpoint(level, owner) if level in self.config["levels"] else None
        if not path:
            return "untrained (seeded weights)"
        if self.level(level)["checkpoint"] != "train" and not checkpoint_is_trained(path):
            return f"untrained (checkpoint {path} is not a trained one)"
        return f"trained ({path})"

    # -- what one level reads of another ------------------------------------------------------------
    def level4_reads_level3(self, reference: str) -> bool:
        """levels.level4.gene_context: true (validated: the reference has an annotation) or auto with one."""
        setting = self.level("level4")["gene_context"]
        return setting is True or (setting == "auto" and bool(self.ref(reference)["annotation"]))

    def level6_context(self, cohort: str) -> str | None:
        """results/{reference}/level5.zarr when the cohort names a reference whose level 5 this config builds."""
        ref = self.config["cohorts"][cohort]["reference"]
        if ref and self.ref(ref)["hic"]:
            return self.path(ref, "level5.zarr")
        return None

    # -- cohorts: VCF index, split conversion (cohorts.<name>.split_bp), level-6 shards ---------------
    def vcf_index(self, cohort: str) -> str | None:
        from genoattn.io.vcf import index_path

        return index_path(self.config["cohorts"][cohort]["vcf"])

    def genotype_parts(self, cohort: str) -> list[str]:
        """Regions of the pieces of a split conversion, in VCF order; [] when the cohort is not split,
        or its VCF has no index yet (the one conversion job then fails with the command that makes it)."""
        from genoattn.io.vcf_parts import plan_parts

        c = self.config["cohorts"][cohort]
        if not c["split_bp"] or not self.vcf_index(cohort):
            return []
        cache = self.__dict__.setdefault("_parts", {})
        if cohort not in cache:
            cache[cohort] = plan_parts(c["vcf"], c["split_bp"], c["regions"])
        return cache[cohort]

    def genotype_part_names(self, cohort: str) -> list[str]:
        return [f"p{i:05d}" for i in range(len(self.genotype_parts(cohort)))]

    def genotype_part_paths(self, cohort: str) -> list[str]:
        return [self.path(cohort, "genotypes_parts", f"{p}.zarr") for p in self.genotype_part_names(cohort)]

    def genotype_part_region(self, cohort: str, part: str) -> str:
        parts = self.genotype_parts(cohort)
        i = int(part[1:])
        if i >= len(parts):
            raise ValueError(f"cohort {cohort} has {len(parts)} genotype pieces, not piece {part}")
        return parts[i]

    def samples(self, cohort: str) -> list[str]:
        """The cohort's selected samples (sample sheet, else the VCF header), in stored order."""
        from genoattn.io.samples import select_samples

        cache = self.__dict__.setdefault("_samples", {})
        if cohort not in cache:
            cache[cohort] = select_samples(self.config, cohort)
        return cache[cohort]

    def shard_count(self, cohort: str) -> int:
        """Level-6 shards of a cohort, known when the DAG is built (sample sheet / VCF header)."""
        from genoattn.io.samples import n_shards

        return n_shards(len(self.samples(cohort)), self.level("level6")["samples_per_shard"])

    def shard_paths(self, cohort: str) -> list[str]:
        return [self.path(cohort, "level6_shards", f"{k}.zarr") for k in range(self.shard_count(cohort))]


def checkpoint_is_trained(path: str) -> bool:
    """The ``trained`` flag of a safetensors file's metadata, read from its JSON header (no torch)."""
    import json
    import struct

    try:
        with open(path, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n))
    except (OSError, ValueError, struct.error):
        return False
    return header.get("__metadata__", {}).get("trained") == "true"
