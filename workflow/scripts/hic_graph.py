"""Snakemake adapter: the Hi-C contact graph of one contig (genoattn.hic.run_contig)."""
from genoattn import hic
from genoattn.runtime import snakemake_job

with snakemake_job(snakemake):  # noqa: F821 (injected by Snakemake)
    hic.run_contig(dict(snakemake.params.ref), snakemake.wildcards.contig, snakemake.output[0],
                   dict(snakemake.params.cfg))
