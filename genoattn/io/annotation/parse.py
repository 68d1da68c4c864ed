"""parse_annotation: a GTF/GFF3 file -> (the annotation table, its metadata)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Mapping

import pandas as pd

from genoattn.io.annotation.errors import AnnotationError
from genoattn.io.annotation.gff3 import _parse_gff3
from genoattn.io.annotation.gtf import _parse_gtf
from genoattn.io.annotation.model import _Stats
from genoattn.io.annotation.reading import _open_text, detect_format
from genoattn.io.annotation.rows import _rows
from genoattn.io.annotation.schema import META_KEY
from genoattn.io.annotation.table import _table


def parse_annotation(path: str | os.PathLike, fmt: str | None = None, contig_map=None,
                     contig_lengths: Mapping[str, int] | None = None, merge_stop_codons: bool = True,
                     source_name: str | None = None) -> tuple[pd.DataFrame, dict]:
    """Parse a GTF/GFF3 into the annotation table.

    ``contig_map``: a :class:`genoattn.contigs.ContigMap` (None: contig = source_contig).
    ``contig_lengths``: reference name -> length; a feature ending beyond it is an error.
    Returns ``(table, metadata)``; the metadata dict is what :func:`write_annotation` stores.
    """
    path = Path(path)
    if not path.exists():
        raise AnnotationError(f"{path}: annotation file not found. "
                              f"Fix: check references.<name>.annotation in the config")
    fmt = fmt or detect_format(path)
    if fmt not in ("gtf", "gff3"):
        raise AnnotationError(f"{path}: format {fmt!r} is not gtf or gff3")
    st = _Stats()
    with _open_text(path) as fh:
        try:
            genes = _parse_gtf(fh, path, st) if fmt == "gtf" else _parse_gff3(fh, path, st)
        except (EOFError, gzip.BadGzipFile, OSError) as exc:
            raise AnnotationError(f"{path}: cannot be read to the end ({exc}). Fix: the file is truncated or "
                                  f"corrupt; download it again and check its checksum") from None
    rows = _rows(genes, fmt, merge_stop_codons, st)
    del genes  # the parse model goes before the DataFrame is built (peak memory)
    if not rows:
        raise AnnotationError(f"{path}: no gene, transcript, exon or CDS features found ({fmt}). Fix: check that "
                              f"this is the gene annotation of the reference (types gene/mRNA/transcript/exon/CDS)")
    df, mapping, unmapped = _table(rows, path, st, contig_map, contig_lengths)
    del rows
    sources = list(mapping)

    counts = {f: int(n) for f, n in df["feature"].value_counts().items()}
    meta = {
        "source": source_name or str(path),
        "format": fmt,
        "sha256": _sha256(path),
        META_KEY: {
            "rows": counts,
            "genes": counts.get("gene", 0),
            "transcripts": counts.get("transcript", 0),
            "unmapped_contigs": unmapped,
            "unmapped_rows": int(sum(unmapped.values())),
            "contig_map": {s: mapping[s] for s in sources},
            "stop_codons_merged_into_cds": st.stop_codons_merged,
            "cds_rows_from_split_stop_codons": st.cds_added_from_stop,
            "cds_phases_computed": st.phases_computed,
            "exons_derived": st.exons_derived,
            "transcripts_synthesized": st.transcripts_synthesized,
            "genes_synthesized": st.genes_synthesized,
            "rows_dropped_without_strand": st.dropped_unstranded,
        },
    }
    return df, meta


def _sha256(path: Path) -> str:
    from genoattn.io.store import sha256_file
    return sha256_file(path)
