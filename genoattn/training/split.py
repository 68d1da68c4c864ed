"""Held-out chromosomes: the split every sequence-level objective trains and measures on.

``references.<name>.held_out`` names the test and validation contigs; every other selected contig is
a training contig. A model is never shown a base of a held-out contig during training, and its
metrics (model.json, benchmarks/RESULTS.md) are measured on them only. For the yeast demo this is the
split published yeast DNA language models use: test chrXI, chrXIII, chrXV; validation chrXII, chrXIV,
chrXVI; training the other ten nuclear chromosomes.
"""

from __future__ import annotations


class SplitError(ValueError):
    """The held-out split does not fit the reference's contigs; the message names the key and the fix."""


def split_contigs(contigs: list[str], held_out: dict | None, key: str) -> dict[str, list[str]]:
    """{'train': [...], 'validation': [...], 'test': [...]} of ``contigs`` (in their order)."""
    if not held_out or not held_out.get("test"):
        raise SplitError(f"{key} is not set: training needs held-out chromosomes to measure on. Fix: set "
                         f"{key}: {{test: [...], validation: [...]}} with contig names of the reference "
                         "(yeast: test [chrXI, chrXIII, chrXV], validation [chrXII, chrXIV, chrXVI])")
    test, validation = list(held_out["test"]), list(held_out.get("validation") or [])
    unknown = [c for c in test + validation if c not in contigs]
    if unknown:
        raise SplitError(f"{key} names {', '.join(unknown)}, not selected contigs of the reference (selected: "
                         f"{', '.join(contigs[:12])}{' ...' if len(contigs) > 12 else ''}). Fix: use the "
                         "reference's contig names, or include those contigs")
    both = sorted(set(test) & set(validation))
    if both:
        raise SplitError(f"{key}: {', '.join(both)} are both test and validation contigs. Fix: name each once")
    train = [c for c in contigs if c not in set(test) | set(validation)]
    if not train:
        raise SplitError(f"{key} leaves no training contig. Fix: hold out fewer contigs")
    return {"train": train, "validation": [c for c in contigs if c in validation],
            "test": [c for c in contigs if c in test]}
