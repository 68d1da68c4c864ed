"""Snakemake adapter for level 2 (genoattn.levels.codon)."""
from genoattn.levels import codon
from genoattn.runtime import snakemake_job

with snakemake_job(snakemake):  # noqa: F821 (injected by Snakemake)
    codon.run(snakemake.input.annotation, snakemake.input.level1, snakemake.output[0], snakemake.wildcards.contig,
              {"levels": {"level2": dict(snakemake.params.cfg), "annotation": dict(snakemake.params.annotation)},
               "kernels": {"device": snakemake.params.device}},
              device=None if snakemake.params.device == "auto" else snakemake.params.device)
