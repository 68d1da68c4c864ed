"""Vocabulary shared by the GTF and GFF3 parsers: feature types, strands, phases, canonical
markers, kept attributes and id prefixes."""

from __future__ import annotations

# feature types
_LEAF_KIND = {
    "exon": "exon", "noncoding_exon": "exon", "pseudogenic_exon": "exon", "coding_exon": "exon",
    "CDS": "CDS", "cds": "CDS",
    "five_prime_UTR": "utr", "three_prime_UTR": "utr", "UTR": "utr", "five_prime_utr": "utr",
    "three_prime_utr": "utr", "5UTR": "utr", "3UTR": "utr", "UTR5": "utr", "UTR3": "utr",
    "start_codon": "start_codon", "stop_codon": "stop_codon",
}
_GTF_KIND = dict(_LEAF_KIND, gene="gene", transcript="transcript")
_GENE_TYPES = {"gene", "pseudogene", "ncRNA_gene", "transposable_element_gene", "blocked_reading_frame",
               "protein_coding_gene", "rRNA_gene", "tRNA_gene", "snRNA_gene", "snoRNA_gene", "miRNA_gene"}
_STRANDS = {"+", "-", ".", "?"}
_PHASES = {"0": 0, "1": 1, "2": 2, ".": None}

# canonical markers given as their own attribute -> the tag they become
_CANONICAL_KEYS = {"canonical": "canonical", "is_canonical": "canonical", "ensembl_canonical": "Ensembl_canonical",
                   "mane_select": "MANE_Select", "refseq_select": "RefSeq_Select",
                   "mane_plus_clinical": "MANE_Plus_Clinical"}
_FALSY = {"", "0", "false", "no", "n", "f", "."}
# GFF3 attributes kept (the others are skipped while parsing)
_GFF_KEEP = {"ID", "Parent", "Name", "gene_name", "gene", "gene_id", "transcript_id", "biotype", "gene_biotype",
             "gene_type", "transcript_biotype", "transcript_type", "tag"}

_GENE_PREFIXES = ("gene:", "gene-")
_TX_PREFIXES = ("transcript:", "rna-")

# a key=value match counts only when it starts here (not locus_tag for tag)
_KEY_START = " ;\t"


def _norm_tag(value: str) -> str:
    return "_".join(value.split())
