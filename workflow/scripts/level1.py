"""Snakemake adapter for level 1 (genoattn.levels.level1)."""
from genoattn.levels import level1
from genoattn.runtime import snakemake_job

with snakemake_job(snakemake):  # noqa: F821 (injected by Snakemake)
    level1.run(snakemake.input.tokens, snakemake.wildcards.contig, snakemake.output[0], snakemake.params.cfg,
               annotation_path=snakemake.input.annotation or None, device=snakemake.params.device)
