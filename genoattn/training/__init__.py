"""Self-supervised training of the level modules (DESIGN.md, "Weights").

Built so far: level 1, masked-base prediction (:mod:`genoattn.training.masked_bases`,
``genoattn train level1``). Not built yet: masked codons (level 2), held-out Hi-C contacts
(level 4), masked genotypes (level 6); those levels run on seeded weights (``trained: false``).
"""
