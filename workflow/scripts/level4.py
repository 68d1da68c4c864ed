"""Snakemake adapter for level 4 (genoattn.levels.regulatory)."""
from genoattn.levels import regulatory
from genoattn.runtime import snakemake_job

with snakemake_job(snakemake):  # noqa: F821 (injected by Snakemake)
    regulatory.run(snakemake.input.hic, snakemake.input.level1, snakemake.output[0], snakemake.params.cfg,
                   level3_path=snakemake.input.level3 or None, kernels_cfg=snakemake.params.kernels,
                   inputs=snakemake.params.raw_inputs, contig=snakemake.wildcards.contig,
                   regulatory_elements=snakemake.input.elements or None,
                   contig_policy=snakemake.params.contig_policy)
