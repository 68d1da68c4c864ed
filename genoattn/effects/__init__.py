"""Variant effects across the six scales (`snakemake effects`, `genoattn effects`).

Modules, each with its input contract at the top:

* :mod:`~genoattn.effects.variants`: the VCF of ``references.<name>.variants``, checked against the FASTA;
* :mod:`~genoattn.effects.consequence`: consequences on every transcript, in the terms of ``bcftools csq``;
* :mod:`~genoattn.effects.sequence`: level 1, the masked-base log-likelihood ratio and the window change;
* :mod:`~genoattn.effects.propagate`: the changes of the level-2 to level-5 embeddings;
* :mod:`~genoattn.effects.run`: the job, its parquet table and annotated VCF;
* :mod:`~genoattn.effects.saturation`: every possible SNV of some genes (benchmarks, tests, the demo VCF).
"""
