"""Self-supervised training of the level modules (DESIGN.md, "Weights"): one module per objective.

* level 1, masked bases (:mod:`genoattn.training.masked_bases`);
* level 2, masked codons (:mod:`genoattn.training.masked_codons`);
* level 6, masked genotypes (:mod:`genoattn.training.masked_genotypes`), which `genoattn impute` uses.

:mod:`genoattn.training.loop` is the loop they share (schedule, resume, DDP, progress, outputs);
:mod:`genoattn.training.split` the held-out chromosomes. Not built yet: held-out Hi-C contacts (levels
4-5); level 3 has no objective on yeast (README.md). Those levels run on seeded weights (``trained: false``).
"""
