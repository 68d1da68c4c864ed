"""Snakemake adapter for the annotation table (genoattn.io.annotation)."""
from genoattn.io import annotation
from genoattn.runtime import snakemake_job

with snakemake_job(snakemake):  # noqa: F821 (injected by Snakemake)
    annotation.run(snakemake.input.annotation, snakemake.input.fasta, snakemake.output[0],
                   reference_cfg=snakemake.params.cfg, reference=snakemake.wildcards.reference)
