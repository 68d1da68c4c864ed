"""Snakemake adapter for level 0 (genoattn.levels.tokenize)."""
from genoattn.levels import tokenize
from genoattn.runtime import snakemake_job

with snakemake_job(snakemake):  # noqa: F821 (injected by Snakemake)
    tokenize.run(snakemake.input.fasta, snakemake.output[0], snakemake.params.reference,
                 chunk_size=snakemake.params.cfg["chunk_size"])
