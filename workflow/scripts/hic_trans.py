"""Snakemake adapter: genome-wide trans-chromosomal links (genoattn.hic.run_trans)."""
from genoattn import hic
from genoattn.runtime import snakemake_job

with snakemake_job(snakemake):  # noqa: F821 (injected by Snakemake)
    hic.run_trans(dict(snakemake.params.ref), list(snakemake.params.contigs), snakemake.output[0],
                  dict(snakemake.params.cfg))
