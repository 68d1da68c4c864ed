"""Gene annotation (GTF or GFF3) -> the annotation table, 0-based half-open, once.

Output contract (results/{reference}/annotation.parquet, read with :func:`read_annotation`)
--------------------------------------------------------------------------------------------
One row per feature, columns (in this order)::

    feature             gene | transcript | exon | CDS
    contig              reference (canonical, aliased) contig name; null when the reference lacks it
    source_contig       the contig name as written in the annotation file
    start, end          int64, 0-based half-open (GTF/GFF3 start - 1, end)
    strand              '+' / '-'
    phase               int8, CDS phase (GTF frame / GFF3 phase column), -1 for non-CDS rows
    gene_id, gene_name, gene_biotype
    transcript_id       null for gene rows
    transcript_biotype
    tags                comma-separated tags ("Ensembl_canonical,MANE_Select"); "" when none
    source_line         1-based line of the input row (the first contributing row for a derived one)

Parquet key/value metadata: ``source`` (input path), ``format`` (gtf|gff3), ``sha256`` (of the input
file), and a JSON ``genoattn_annotation`` with counts (rows per feature, unmapped contigs and their
rows, derived rows).

What the parser does (so the table means the same thing whatever the input convention)
----------------------------------------------------------------------------------------
* GTF: rows are grouped by the ``gene_id`` / ``transcript_id`` attributes; genes and transcripts
  without their own row are derived from their exons/CDS (extent = min/max). An exon/CDS with a
  gene_id but no transcript_id belongs to a transcript synthesized with the gene's id.
* GFF3: the ID/Parent hierarchy; gene -> mRNA/transcript/tRNA/ncRNA/rRNA/... -> exon/CDS. Deeper
  chains (gene -> primary_transcript -> miRNA -> exon) take the top ancestor as gene. An exon/CDS
  whose Parent is a top-level gene gets a synthesized transcript (transcript_id = gene_id); one
  whose Parent is a top-level transcript-like row (mRNA, ...) gets a synthesized gene. A feature
  with several Parents belongs to each. Attribute values are percent-decoded (%3B -> ';').
  IDs become gene_id/transcript_id unless the row has gene_id/transcript_id attributes; the
  type prefixes of Ensembl (``gene:``, ``transcript:``) and NCBI (``gene-``, ``rna-``) are removed,
  so the ids match the same release's GTF.
* CDS rows include the stop codon whatever the input convention: GTF stop_codon rows (GTF 2.2 /
  Ensembl / GENCODE / NCBI keep the stop out of CDS) are merged into the abutting CDS, or added as
  a CDS row when a split stop codon has no CDS in its exon. A CDS with phase '.' gets the phase
  computed from the transcript's CDS order.
* A transcript without exon rows gets exons from the union of its CDS/UTR/codon rows, or one
  exon spanning it when it has none of those.
* Biotypes: gene_biotype / gene_type / biotype attributes; for GFF3 the row's type when there is
  none (transcript_biotype 'mRNA', 'tRNA', ...; gene_biotype only for types other than 'gene').
* Tags: every ``tag`` value (GTF repeated attribute or GFF3 comma list), spaces become '_'
  ("MANE Select" -> "MANE_Select", "RefSeq Select" -> "RefSeq_Select"), plus truthy canonical
  markers given as their own attribute (canonical, is_canonical, Ensembl_canonical, MANE_Select,
  RefSeq_Select). Transcript rows carry the union of their own tags and those of their exon/CDS
  rows; exon/CDS rows carry their transcript's tags; gene rows their own.
* gene_name: gene_name, then (gene rows) Name, then gene attributes; transcripts and exons
  inherit their gene's values.
* Contigs are mapped onto the reference with :class:`genoattn.contigs.ContigMap`; rows on a
  contig the reference lacks keep ``contig`` null (counted in the metadata and logged). A
  coordinate beyond the contig's length is an error.

Bad input (wrong column count, non-integer coordinates, start > end, start < 1, bad strand or CDS
phase, unknown format or compression, a GFF3 Parent that never appears as an ID) raises
:class:`AnnotationError` naming the file, the 1-based line, the record and the fix; the output is
written under a temporary name and renamed into place only when complete.

Modules: schema (columns, metadata key), errors, reading (open, compression, format detection,
line checks), features (shared vocabulary), model (intermediate genes/transcripts), gtf, gff3,
rows (model -> rows, stop codons, phases), table (rows -> sorted DataFrame, contig mapping),
parse (parse_annotation), parquet (write/read/metadata), build (build_annotation, run).
"""

from __future__ import annotations

from genoattn.io.annotation.build import build_annotation, log, run
from genoattn.io.annotation.errors import AnnotationError
from genoattn.io.annotation.parquet import read_annotation, read_annotation_metadata, write_annotation
from genoattn.io.annotation.parse import parse_annotation
from genoattn.io.annotation.reading import detect_format
from genoattn.io.annotation.schema import COLUMNS, FEATURES, META_KEY

__all__ = ["AnnotationError", "COLUMNS", "FEATURES", "META_KEY", "build_annotation", "detect_format",
           "log", "parse_annotation", "read_annotation", "read_annotation_metadata", "run", "write_annotation"]
