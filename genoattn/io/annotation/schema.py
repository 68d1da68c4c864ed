"""The annotation table's contract: column order, feature values, metadata key, Arrow schema."""

from __future__ import annotations

COLUMNS = ("feature", "contig", "source_contig", "start", "end", "strand", "phase", "gene_id", "gene_name",
           "gene_biotype", "transcript_id", "transcript_biotype", "tags", "source_line")
FEATURES = ("gene", "transcript", "exon", "CDS")
META_KEY = "genoattn_annotation"


def _arrow_schema():
    import pyarrow as pa
    s, i64 = pa.string(), pa.int64()
    return pa.schema([("feature", s), ("contig", s), ("source_contig", s), ("start", i64), ("end", i64),
                      ("strand", s), ("phase", pa.int8()), ("gene_id", s), ("gene_name", s), ("gene_biotype", s),
                      ("transcript_id", s), ("transcript_biotype", s), ("tags", s), ("source_line", i64)])
