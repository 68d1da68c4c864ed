"""Level 0: FASTA -> results/{reference}/tokens.zarr.

Output contract
---------------
One group per selected contig (canonical name, after ``contig_aliases``):
``tokens`` uint8 [position] (codes of :mod:`genoattn.alphabet`), ``softmask`` bool [position]
(True where the FASTA letter was lowercase). Group attrs: contig, length, source_name.
Root attrs: level "tokenize", contigs, lengths, alphabet, fasta, inputs (sha256), config.
Positions are 0-based (the index of the array); no coordinate array is stored for them.

Written streaming, ``chunk_size`` bases at a time (memory does not grow with contig length),
into a temporary store renamed into place at the end: any bad record leaves nothing behind.
"""

from __future__ import annotations

import logging

from genoattn import alphabet
from genoattn.contigs import canonical_fasta_names, select_contigs
from genoattn.io import fasta
from genoattn.io.store import atomic_store, input_checksums
from genoattn.runtime import Progress

log = logging.getLogger(__name__)


def selected_records(fasta_path, aliases=None, include=(".*",), exclude=()):
    """[(canonical name, source name, length)] of the contigs to process, in FASTA order."""
    records = fasta.fasta_index(fasta_path)
    canonical = canonical_fasta_names([r.name for r in records], aliases)
    dup = {c for c in canonical if canonical.count(c) > 1}
    if dup:
        raise fasta.FastaError(f"{fasta_path}: contig_aliases map several records onto {sorted(dup)}; "
                               "Fix: correct the alias map (references.<name>.contig_aliases, --alias) so each reference contig has one name")
    keep = set(select_contigs(canonical, include, exclude))
    out = [(c, r.name, r.length) for c, r in zip(canonical, records) if c in keep]
    if not out:
        raise fasta.FastaError(f"{fasta_path}: no contig left after include={list(include)} exclude={list(exclude)}; "
                               f"the FASTA has {', '.join(canonical[:8])}. Fix: correct the patterns of references.<name>.include/exclude (--include/--exclude)")
    return out


def run(fasta_path: str, out: str, reference: dict, chunk_size: int = 1 << 20) -> None:
    """Tokenize the selected contigs of ``fasta_path`` into the store ``out``."""
    records = selected_records(fasta_path, reference.get("contig_aliases"),
                               reference["include"], reference["exclude"])
    total = sum(r[2] for r in records)
    log.info("tokenizing %d contigs, %d bp, from %s", len(records), total, fasta_path)
    attrs = {
        "level": "tokenize",
        "contigs": [r[0] for r in records],
        "lengths": [r[2] for r in records],
        "alphabet": alphabet.LETTERS,
        "fasta": str(fasta_path),
        "inputs": input_checksums([fasta_path]),
        "config": {"chunk_size": chunk_size, "contig_aliases": reference["contig_aliases"],
                   "include": reference.get("include"), "exclude": reference.get("exclude")},
    }
    progress = Progress(total, "tokenize bp")
    with atomic_store(out, attrs=attrs) as store:
        for name, source, length in records:
            group = store.subgroup(name, attrs={"contig": name, "length": length, "source_name": source})
            tokens = group.create("tokens", (length,), "uint8", ("position",), chunks=(chunk_size,))
            softmask = group.create("softmask", (length,), "bool", ("position",), chunks=(chunk_size,),
                                    fill_value=False)
            n_soft = n_n = 0
            for start, raw in fasta.iter_chunks(fasta_path, source, chunk_size):
                tok, soft = fasta.encode_chunk(raw, fasta_path, source, start)
                tokens[start:start + len(tok)] = tok
                softmask[start:start + len(tok)] = soft
                n_soft += int(soft.sum())
                n_n += int((tok == alphabet.N).sum())
                progress.update(len(tok))
            group.group.attrs.update({"softmasked_bp": n_soft, "n_bp": n_n})
            log.info("%s: %d bp, %d soft-masked, %d N", name, length, n_soft, n_n)
