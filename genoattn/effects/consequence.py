"""Consequence of a variant on each transcript it touches, in the vocabulary of ``bcftools csq``.

Input contract
--------------
* Transcripts of :mod:`genoattn.transcripts` (exons and CDS 5'->3' on the transcript strand, 0-based
  half-open, the phase of the first CDS segment), all of them (not only the canonical one per gene), as
  ``bcftools csq`` annotates every transcript.
* ``reference(start, end)``: the contig's reference letters (upper case) of [start, end).
* A variant: 0-based ``start`` of its REF on the contig, REF and ALT as in the VCF (a padding base
  before an indel is allowed and stripped).

Rules (Sequence Ontology terms; the splice distances are bcftools' ``gff.h`` constants)
----------------------------------------------------------------------------------------
* In a CDS, an SNV changes the codon of the annotated frame (the spliced CDS, so a codon split by an
  intron is read across it; the complement on '-'): ``start_lost`` (the first codon is ATG and changes),
  ``stop_lost`` / ``stop_retained`` (the last codon is a stop), ``stop_gained``, ``missense``,
  ``synonymous``; the standard genetic code. An indel in a CDS: ``frameshift`` unless its length change
  is a multiple of 3 (``inframe_insertion`` / ``inframe_deletion``).
* Exonic bases within :data:`SPLICE_REGION_EXON` of an exon boundary that faces an intron add
  ``splice_region``; intronic bases 1-2 from the exon are ``splice_donor`` (5' end of the intron on the
  transcript strand) or ``splice_acceptor`` (3' end); 3-8 from the exon ``splice_region``; deeper ``intron``.
* Exonic bases outside the CDS of a coding transcript: ``5_prime_utr`` / ``3_prime_utr``; exons of a
  non-coding transcript: ``non_coding``. No transcript: ``intergenic``.

Each consequence carries the protein change as bcftools writes it (``57H>57L``; ``120N`` when
synonymous) and the DNA change (1-based genomic position, forward-strand letters, ``2000T>A``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPLICE_DONOR = 2             # intronic bases of the donor / acceptor site (bcftools N_SPLICE_DONOR)
SPLICE_REGION_EXON = 3       # exonic bases of the splice region (N_SPLICE_REGION_EXON)
SPLICE_REGION_INTRON = 8     # intronic bases of the splice region (N_SPLICE_REGION_INTRON)

#: most severe first (the order of Ensembl VEP); a variant's ``consequence`` is its most severe one
SEVERITY = ("splice_acceptor", "splice_donor", "stop_gained", "frameshift", "stop_lost", "start_lost",
            "inframe_insertion", "inframe_deletion", "missense", "splice_region", "stop_retained", "synonymous",
            "coding_sequence", "5_prime_utr", "3_prime_utr", "non_coding", "intron", "intergenic")
RANK = {c: i for i, c in enumerate(SEVERITY)}

_BASES = "TCAG"
_AMINO = "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG"
CODON_TABLE = {a + b + c: _AMINO[16 * i + 4 * j + k] for i, a in enumerate(_BASES) for j, b in enumerate(_BASES)
               for k, c in enumerate(_BASES)}
_COMP = str.maketrans("ACGTN", "TGCAN")


def complement(seq: str) -> str:
    return seq.translate(_COMP)


def translate(codon: str) -> str:
    """One-letter amino acid of a codon (``X`` when it holds a base other than A/C/G/T)."""
    return CODON_TABLE.get(codon, "X")


@dataclass(frozen=True)
class Consequence:
    consequence: str          # SO terms joined by '&', most severe first
    gene_id: str
    gene_name: str
    transcript_id: str
    biotype: str
    strand: str
    protein_change: str = ""
    dna_change: str = ""
    codon_index: int = -1     # 0-based codon of the annotated frame holding the variant (SNVs in a CDS)

    @property
    def most_severe(self) -> str:
        return self.consequence.split("&")[0]

    def bcsq(self) -> str:
        """bcftools' BCSQ layout: consequence|gene|transcript|biotype|strand|protein change|DNA change."""
        fields = [self.consequence, self.gene_name, self.transcript_id, self.biotype, self.strand]
        if self.protein_change:
            fields += [self.protein_change, self.dna_change]
        return "|".join(fields).rstrip("|")


def trim(start: int, ref: str, alt: str) -> tuple[int, str, str]:
    """Strip the bases REF and ALT share at the start (the VCF padding base), then at the end."""
    k = 0
    while k < min(len(ref), len(alt)) and ref[k] == alt[k]:
        k += 1
    start, ref, alt = start + k, ref[k:], alt[k:]
    while ref and alt and ref[-1] == alt[-1]:
        ref, alt = ref[:-1], alt[:-1]
    return start, ref, alt


def _sorted_terms(terms: set[str]) -> str:
    return "&".join(sorted(terms, key=RANK.__getitem__))


def _intron_terms(t, lo: int, hi: int) -> set[str]:
    """Terms of the intronic bases [lo, hi) of transcript ``t`` (none when they are not intronic)."""
    terms: set[str] = set()
    asc = t.exons[np.argsort(t.exons[:, 0])]
    for (s1, e1), (s2, e2) in zip(asc[:-1], asc[1:]):
        a, b = max(lo, e1), min(hi, s2)            # the part of [lo, hi) in the intron [e1, s2)
        if a >= b:
            continue
        # distance (1-based) of the nearest affected base from the exon on the left and on the right
        d_left, d_right = a - e1 + 1, s2 - (b - 1)
        left_site, right_site = ("splice_donor", "splice_acceptor") if t.strand == "+" else \
                                ("splice_acceptor", "splice_donor")
        for d, site in ((d_left, left_site), (d_right, right_site)):
            if d <= SPLICE_DONOR:
                terms.add(site)
            elif d <= SPLICE_REGION_INTRON:
                terms.add("splice_region")
        if not terms & {"splice_donor", "splice_acceptor", "splice_region"}:
            terms.add("intron")
    return terms


def _exon_edge_terms(t, lo: int, hi: int) -> set[str]:
    """``splice_region`` when [lo, hi) holds an exonic base within 3 bp of an exon edge facing an intron."""
    asc = t.exons[np.argsort(t.exons[:, 0])]
    for i, (s, e) in enumerate(asc):
        edges = ([s] if i > 0 else []) + ([e] if i < len(asc) - 1 else [])
        a, b = max(lo, s), min(hi, e)
        if a >= b:
            continue
        for edge in edges:
            near = (s, min(e, s + SPLICE_REGION_EXON)) if edge == s else (max(s, e - SPLICE_REGION_EXON), e)
            if a < near[1] and b > near[0]:
                return {"splice_region"}
    return set()


def transcript_consequence(t, start: int, ref: str, alt: str, reference) -> Consequence | None:
    """The consequence of REF>ALT at 0-based ``start`` on transcript ``t``; None when it does not touch it
    (outside the transcript and further than the splice region from it)."""
    start, ref, alt = trim(start, ref, alt)
    # an insertion sits between start - 1 and start; it touches the bases on both sides
    lo, hi = (start - 1, start + 1) if not ref else (start, start + len(ref))
    if hi <= t.start or lo >= t.end:
        return None                      # upstream / downstream: bcftools reports nothing either
    exonic = any(lo < e and hi > s for s, e in t.exons)
    terms = _intron_terms(t, lo, hi) | (_exon_edge_terms(t, lo, hi) if exonic else set())
    protein = dna = ""
    codon_index = -1
    if exonic and not t.coding:
        terms.add("non_coding")
    elif exonic:
        cds_pos = t.cds_positions()
        in_cds = np.isin(np.arange(lo, hi), cds_pos)
        if in_cds.any() and len(ref) == 1 and len(alt) == 1:
            protein, dna, codon_index, term = _snv_codon(t, cds_pos, start, ref, alt, reference)
            terms.add(term)
            dna = f"{start + 1}{ref}>{alt}" if protein else ""
        elif in_cds.any() and (ref or in_cds.all()):
            diff = len(alt) - len(ref)
            terms.add("frameshift" if diff % 3 else ("inframe_insertion" if diff > 0 else "inframe_deletion"))
            if diff % 3 == 0 and in_cds.all() and _inframe_stop(t, cds_pos, start, ref, alt, reference):
                terms.add("stop_gained")
        elif in_cds.any():
            terms.add("coding_sequence")
        else:
            first, last = int(cds_pos[0]), int(cds_pos[-1])
            upstream = hi <= first if t.strand == "+" else lo > first
            downstream = lo > last if t.strand == "+" else hi <= last
            # between two CDS parts of one exon (a programmed ribosomal frameshift, e.g. Ty1 gag-pol)
            terms.add("5_prime_utr" if upstream else "3_prime_utr" if downstream else "coding_sequence")
    if not terms:
        return None
    return Consequence(_sorted_terms(terms), t.gene_id, t.gene_name, t.transcript_id,
                       t.transcript_biotype or ("protein_coding" if t.coding else "non_coding"), t.strand,
                       protein, dna, codon_index)


def _inframe_stop(t, cds_pos: np.ndarray, start: int, ref: str, alt: str, reference) -> bool:
    """Whether an in-frame indel inside the CDS puts a stop codon before the original stop."""
    lo, hi = int(cds_pos.min()), int(cds_pos.max()) + 1
    genomic = reference(lo, hi)
    seq = "".join(genomic[p - lo] for p in cds_pos)
    if t.strand == "+":
        i = int(np.flatnonzero(cds_pos == (start if ref else start - 1))[0]) + (0 if ref else 1)
        new = alt
    else:
        last = start + len(ref) - 1 if ref else start
        i = int(np.flatnonzero(cds_pos == last)[0]) + (0 if ref else 1)
        seq, new = complement(seq), complement(alt[::-1])
    mutated = seq[:i] + new + seq[i + len(ref):]
    p0 = t.first_phase
    protein = [translate(seq[k:k + 3]) for k in range(p0, len(seq) - 2, 3)]
    changed = [translate(mutated[k:k + 3]) for k in range(p0, len(mutated) - 2, 3)]
    stop = protein.index("*") if "*" in protein else len(protein)
    new_stop = changed.index("*") if "*" in changed else len(changed)
    return new_stop < stop + (len(alt) - len(ref)) // 3


def _snv_codon(t, cds_pos: np.ndarray, start: int, ref: str, alt: str, reference):
    """(protein change, DNA change, codon index, term) of an SNV inside the CDS."""
    i = int(np.flatnonzero(cds_pos == start)[0])
    j = i - t.first_phase
    n_codons = (len(cds_pos) - t.first_phase) // 3
    if j < 0 or j // 3 >= n_codons:
        return "", "", -1, "coding_sequence"     # a partial codon of an incomplete CDS
    k = j // 3
    bases = cds_pos[t.first_phase + 3 * k: t.first_phase + 3 * k + 3]
    letters = "".join(reference(int(b), int(b) + 1) for b in bases)
    ref_codon = letters if t.strand == "+" else complement(letters)
    slot = int(np.flatnonzero(bases == start)[0])
    base = alt if t.strand == "+" else complement(alt)
    alt_codon = ref_codon[:slot] + base + ref_codon[slot + 1:]
    aa_ref, aa_alt = translate(ref_codon), translate(alt_codon)
    n = k + 1
    if k == 0 and ref_codon == "ATG" and t.first_phase == 0:
        term = "start_lost"
        return "", "", k, term            # bcftools prints no protein change for start_lost
    if aa_ref == "*" and k == n_codons - 1:
        if aa_alt == "*":
            return f"{n}*", "", k, "stop_retained"
        return f"{n}*>{n}{aa_alt}", "", k, "stop_lost"
    if aa_alt == aa_ref:
        return f"{n}{aa_ref}", "", k, "synonymous"
    return f"{n}{aa_ref}>{n}{aa_alt}", "", k, "stop_gained" if aa_alt == "*" else "missense"


def variant_consequences(transcripts, start: int, ref: str, alt: str, reference) -> list[Consequence]:
    """Consequences on every transcript the variant touches, most severe first; ``intergenic`` alone when
    it touches none. ``transcripts`` should be those near ``start`` (see :class:`TranscriptIndex`)."""
    out = [c for t in transcripts if (c := transcript_consequence(t, start, ref, alt, reference)) is not None]
    out.sort(key=lambda c: (RANK[c.most_severe], c.transcript_id))
    if not out:
        return [Consequence("intergenic", "", "", "", "", "")]
    return out


class TranscriptIndex:
    """Transcripts of one contig by position: those within the splice region of a span."""

    def __init__(self, transcripts):
        self.transcripts = sorted(transcripts, key=lambda t: t.start)
        self.starts = np.array([t.start for t in self.transcripts], dtype=np.int64)
        ends = np.array([t.end for t in self.transcripts], dtype=np.int64)
        self.max_end = np.maximum.accumulate(ends) if len(ends) else ends

    def near(self, start: int, end: int) -> list:
        """Transcripts overlapping [start - 8, end + 8)."""
        hi = int(np.searchsorted(self.starts, end + SPLICE_REGION_INTRON, side="left"))
        lo = int(np.searchsorted(self.max_end, start - SPLICE_REGION_INTRON, side="right"))
        return [t for t in self.transcripts[lo:hi] if t.end > start - SPLICE_REGION_INTRON]
