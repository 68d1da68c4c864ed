"""The intermediate gene/transcript model both parsers fill, and the counters of derived rows."""

from __future__ import annotations


class _Gene:
    __slots__ = ("gene_id", "seqid", "start", "end", "strand", "line", "name", "biotype", "tags", "txs")

    def __init__(self, gene_id, seqid=None, start=None, end=None, strand=".", line=None, name=None,
                 biotype=None, tags=None):
        self.gene_id, self.seqid, self.start, self.end, self.strand = gene_id, seqid, start, end, strand
        self.line, self.name, self.biotype, self.tags = line, name, biotype, tags or []
        self.txs = []


class _Tx:
    __slots__ = ("transcript_id", "seqid", "start", "end", "strand", "line", "biotype", "tags", "leaves", "tag_block")

    def __init__(self, transcript_id, seqid=None, start=None, end=None, strand=".", line=None, biotype=None,
                 tags=None):
        self.transcript_id, self.seqid, self.start, self.end, self.strand = transcript_id, seqid, start, end, strand
        self.line, self.biotype, self.tags = line, biotype, dict.fromkeys(tags or ())
        self.leaves = []  # [kind, seqid, start, end, strand, phase, line]
        self.tag_block = None


class _Stats:
    def __init__(self):
        self.max_end: dict[str, tuple[int, int]] = {}
        self.stop_codons_merged = 0
        self.cds_added_from_stop = 0
        self.phases_computed = 0
        self.exons_derived = 0
        self.transcripts_synthesized = 0
        self.genes_synthesized = 0
        self.dropped_unstranded = 0
