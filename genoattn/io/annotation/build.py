"""The workflow step: parse the annotation against the reference FASTA and write the table."""

from __future__ import annotations

import logging
import os
from typing import Mapping

from genoattn.io.annotation.parquet import write_annotation
from genoattn.io.annotation.parse import parse_annotation
from genoattn.io.annotation.schema import META_KEY

log = logging.getLogger("genoattn.annotation")


def build_annotation(annotation: str | os.PathLike, fasta: str | os.PathLike, output: str | os.PathLike,
                     contig_aliases: Mapping[str, str] | None = None, chr_prefix: str = "auto",
                     reference: str = "<reference>") -> dict:
    """Parse ``annotation`` against the reference ``fasta`` and write ``output`` (the workflow step).
    Returns the metadata."""
    import time

    from genoattn.contigs import ContigMap, canonical_fasta_names
    from genoattn.io.fasta import fasta_index

    t0 = time.time()
    records = fasta_index(fasta)
    names = canonical_fasta_names([r.name for r in records], contig_aliases)
    lengths = dict(zip(names, (r.length for r in records)))
    cmap = ContigMap(names, contig_aliases, chr_prefix)
    df, meta = parse_annotation(annotation, contig_map=cmap, contig_lengths=lengths)
    info = meta[META_KEY]
    info["reference"] = reference
    info["fasta"] = str(fasta)
    info["contig_aliases"] = dict(contig_aliases or {})
    info["chr_prefix"] = chr_prefix
    unmapped = info["unmapped_contigs"]
    if unmapped and info["unmapped_rows"] == len(df):
        from genoattn.io.annotation.errors import AnnotationError

        # nothing of the annotation is on the reference: levels 2-3 would run on an empty gene set
        raise AnnotationError(cmap.unmapped_message(list(unmapped), str(annotation), f"references.{reference}")
                              + " None of the annotation's contigs is in the FASTA, so no gene could be used.")
    if unmapped:
        msg = cmap.unmapped_message(list(unmapped), str(annotation), f"references.{reference}")
        log.warning("%s Their %d rows are kept with contig=null (source_contig holds the name) and later "
                    "levels skip them.", msg, info["unmapped_rows"])
    if info["rows_dropped_without_strand"]:
        log.warning("%s: %d gene/transcript/exon/CDS rows have no strand ('.') and none could be taken from "
                    "their transcript or gene; they are left out of the table.", annotation,
                    info["rows_dropped_without_strand"])
    derived = {k: info[k] for k in ("stop_codons_merged_into_cds", "cds_rows_from_split_stop_codons",
                                    "cds_phases_computed", "exons_derived", "transcripts_synthesized",
                                    "genes_synthesized") if info[k]}
    if derived:
        log.info("%s: derived rows: %s", annotation, ", ".join(f"{k}={v:,}" for k, v in derived.items()))
    write_annotation(df, output, meta)
    log.info("%s: %s (%s) -> %s: %s in %.1f s", reference, annotation, meta["format"], output,
             ", ".join(f"{n:,} {f}" for f, n in info["rows"].items()), time.time() - t0)
    return meta


def run(annotation, fasta, output, reference_cfg: Mapping, reference: str) -> dict:
    """Entry point of workflow/scripts/annotation.py."""
    return build_annotation(annotation, fasta, output, contig_aliases=reference_cfg["contig_aliases"],
                            chr_prefix=reference_cfg["chr_prefix"], reference=reference)
