"""Snakemake adapter for level 3 (genoattn.levels.exon)."""
from genoattn.levels import exon
from genoattn.runtime import snakemake_job

with snakemake_job(snakemake):  # noqa: F821 (injected by Snakemake)
    exon.run(snakemake.input.annotation, snakemake.input.level1, snakemake.input.level2, snakemake.output[0],
             snakemake.wildcards.contig,
             {"levels": {"level3": dict(snakemake.params.cfg), "annotation": dict(snakemake.params.annotation)},
              "kernels": {"device": snakemake.params.device}},
             device=None if snakemake.params.device == "auto" else snakemake.params.device)
