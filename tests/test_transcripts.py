"""Transcript model: strand, phase and splicing order checked on the real yeast genome; bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genoattn import alphabet
from genoattn import transcripts as tx
from tests._levels23 import COLUMNS, GENETIC_CODE, contig_tokens, yeast_annotation

_CODE = np.full(256, 255, np.uint8)
for _i, _b in enumerate("TCAG"):
    _CODE[alphabet.LETTERS.index(_b)] = _i
_AA = np.frombuffer("".join(GENETIC_CODE[a + b + c] for a in "TCAG" for b in "TCAG" for c in "TCAG").encode(),
                    np.uint8)


def translate(codon_tokens: np.ndarray) -> np.ndarray:
    c = _CODE[codon_tokens]
    ok = (c != 255).all(1)
    idx = (c[:, 0].astype(np.int64) * 16 + c[:, 1] * 4 + c[:, 2]) % 64
    return np.where(ok, _AA[idx], ord("X")).astype(np.uint8)


@pytest.fixture(scope="module")
def yeast_model():
    return tx.build_transcripts(yeast_annotation(), select="all")


def codon_tokens_on_strand(codons: tx.CodonTable, tokens: np.ndarray) -> np.ndarray:
    b = tokens[codons.base_position]
    return np.where(codons.strand_minus[:, None], alphabet.COMPLEMENT[b], b)


def test_yeast_annotated_frame_translates(yeast_model):
    """Every complete coding transcript of the real genome: frame-0 codons (from the codon table's
    base positions read on the FASTA) translate to M...* with no internal stop."""
    n_coding, failures = 0, []
    contigs = sorted({t.contig for t in yeast_model.transcripts})
    assert len(contigs) >= 16
    for contig in contigs:
        txs = [t for t in yeast_model.transcripts if t.contig == contig and t.coding]
        if not txs:
            continue
        exons = tx.exon_table(txs)
        codons = tx.codon_table(txs, exons)
        aa = translate(codon_tokens_on_strand(codons, contig_tokens(contig)))
        f0 = codons.frame == 0
        tix = exons.transcript_index[codons.exon[f0]]
        bounds = np.searchsorted(tix, np.arange(len(txs) + 1))
        assert np.all(np.diff(tix) >= 0)
        prot = aa[f0]
        for i, t in enumerate(txs):
            p = prot[bounds[i]:bounds[i + 1]].tobytes().decode()
            n_coding += 1
            assert len(p) * 3 == t.cds_length - t.first_phase
            if not (p.startswith("M") and p.endswith("*") and "*" not in p[:-1]):
                failures.append((t.transcript_id, p[:3], p[-3:]))
    assert n_coding == 5983  # protein_coding transcripts of R64-2-1
    assert not failures, failures[:10]


def test_other_frames_are_shifted_copies(yeast_model):
    txs = [t for t in yeast_model.transcripts if t.coding]
    exons = tx.exon_table(txs)
    codons = tx.codon_table(txs, exons)
    tokens = {c: contig_tokens(c) for c in sorted({t.contig for t in txs})}
    tix = exons.transcript_index[codons.exon]
    bounds = np.searchsorted(tix, np.arange(len(txs) + 1))
    for i, t in enumerate(txs):
        sl = slice(bounds[i], bounds[i + 1])
        pos = t.cds_positions()
        seq = tokens[t.contig][pos]
        if t.strand == "-":
            seq = alphabet.COMPLEMENT[seq]
        frames = codons.frame[sl]
        bp = codons.base_position[sl]
        for f in (0, 1, 2):
            got = bp[frames == f].reshape(-1)
            n = len(got)
            assert n == 3 * ((len(pos) - t.first_phase - f) // 3)
            np.testing.assert_array_equal(got, pos[t.first_phase + f:t.first_phase + f + n])
            tok = tokens[t.contig][got]
            if t.strand == "-":
                tok = alphabet.COMPLEMENT[tok]
            np.testing.assert_array_equal(tok, seq[t.first_phase + f:t.first_phase + f + n])
        # codons of a transcript follow the CDS offset, frames interleaved
        assert np.all(np.diff(codons.cds_offset[sl]) == 1)


def test_split_codons_belong_to_first_base_exon(yeast_model):
    t = next(t for t in yeast_model.transcripts if t.transcript_id == "YCL012C_mRNA")
    assert t.strand == "-" and len(t.exons) == 2
    assert t.exons[0, 0] > t.exons[1, 0]  # 5'->3' on the minus strand = descending coordinates
    exons = tx.exon_table([t])
    codons = tx.codon_table([t], exons)
    bp = codons.base_position
    split = np.flatnonzero(np.any(np.abs(np.diff(bp, axis=1)) != 1, axis=1))
    assert len(split) == 2  # junction inside a codon for two of the three frames
    for c in split:
        first_exon = np.flatnonzero((t.exons[:, 0] <= bp[c, 0]) & (t.exons[:, 1] > bp[c, 0]))[0]
        assert codons.exon[c] == first_exon
        assert np.all(np.diff(bp[c]) < 0)  # minus strand: positions run downwards
    assert list(exons.rank) == [1, 2]
    assert np.all(np.diff(codons.exon) >= 0)
    assert codons.exon_offset[-1] == len(codons)


def _rows(*features, tid="T1", gid="G1", contig="chr1", strand="+"):
    out = []
    for k, f in enumerate(features):
        kind, s, e = f[:3]
        phase = f[3] if len(f) > 3 else (-1 if kind != "CDS" else 0)
        out.append(dict(feature=kind, contig=f[4] if len(f) > 4 else contig, source_contig=contig, start=s, end=e,
                        strand=f[5] if len(f) > 5 else strand, phase=phase, gene_id=gid, gene_name=gid,
                        gene_biotype="protein_coding", transcript_id=None if kind == "gene" else tid,
                        transcript_biotype="protein_coding", tags="", source_line=k + 1))
    return out


BAD = {
    "cds_not_multiple_of_3": _rows(("exon", 0, 100), ("CDS", 10, 90, 0)),
    "phase_mismatch": _rows(("exon", 0, 50), ("exon", 60, 100), ("CDS", 10, 50, 0), ("CDS", 60, 92, 0)),
    "overlapping_exons": _rows(("exon", 0, 50), ("exon", 40, 100)),
    "mixed_contig": _rows(("exon", 0, 50), ("exon", 60, 100, -1, "chr2")),
    "mixed_strand": _rows(("exon", 0, 50), ("exon", 60, 100, -1, "chr1", "-")),
    "missing_contig": _rows(("exon", 0, 50, -1, None)),
    "cds_outside_exon": _rows(("exon", 0, 50), ("CDS", 40, 70, 0)),
    "missing_phase": _rows(("exon", 0, 50), ("CDS", 2, 32, -1)),
}


@pytest.mark.parametrize("problem", sorted(BAD))
def test_bad_transcripts_counted_skipped_or_error(problem):
    good = _rows(("gene", 200, 300), ("exon", 200, 300), ("CDS", 210, 240, 0), tid="OK", gid="G2")
    df = pd.DataFrame(BAD[problem] + good, columns=COLUMNS)
    model = tx.build_transcripts(df, on_error="skip", select="all")
    assert model.qc[problem] == 1
    assert sum(model.qc[k] for k in tx.PROBLEMS) == 1
    assert model.skipped == {"T1": problem}
    assert [t.transcript_id for t in model.transcripts] == ["OK"]
    assert list(model.genes["gene_id"]) == ["G2"]
    with pytest.raises(tx.AnnotationModelError, match=r"T1.*" + problem + r".*Fix"):
        tx.build_transcripts(df, on_error="error", select="all", source="my.gtf")
    # a per-contig job (chr1) sees the problem too; a job on another contig only a missing contig
    per_contig = tx.build_transcripts(df, select="all", contigs=["chr1"])
    assert per_contig.qc[problem] == 1 and [t.transcript_id for t in per_contig.transcripts] == ["OK"]
    other = tx.build_transcripts(df, select="all", contigs=["chr9"])
    assert other.qc[problem] == (problem == "missing_contig") and not other.transcripts


def test_phase_continues_across_junction_and_incomplete_start():
    # plus strand, first CDS starts with phase 1 (5'-incomplete), three segments
    rows = _rows(("exon", 0, 20), ("exon", 30, 45), ("exon", 50, 70),
                 ("CDS", 5, 20, 1), ("CDS", 30, 45, (3 - (15 - 1) % 3) % 3), ("CDS", 50, 63, (3 - (30 - 1) % 3) % 3))
    model = tx.build_transcripts(pd.DataFrame(rows, columns=COLUMNS), select="all", on_error="error")
    t = model.transcripts[0]
    codons = tx.codon_table([t])
    f0 = codons.base_position[codons.frame == 0].reshape(-1)
    pos = t.cds_positions()
    np.testing.assert_array_equal(f0, pos[1:1 + len(f0)])
    assert len(f0) == len(pos) - 1
    # tagged 3'-incomplete: a trailing partial codon is allowed (and dropped)
    rows[-1]["end"] = 62
    df = pd.DataFrame(rows, columns=COLUMNS)
    with pytest.raises(tx.AnnotationModelError, match="cds_not_multiple_of_3"):
        tx.build_transcripts(df, select="all", on_error="error")
    tr = pd.DataFrame(_rows(("transcript", 0, 70)), columns=COLUMNS)
    tr["tags"] = "cds_end_NF"
    t2 = tx.build_transcripts(pd.concat([tr, df]), select="all", on_error="error").transcripts[0]
    assert len(tx.codon_table([t2], frames=(0,))) == (len(pos) - 2) // 3
    # UTR / CDS exon types
    assert [tx.EXON_TYPES[i] for i in t.exon_types()] == ["utr5_cds", "cds", "cds_utr3"]


def test_transcript_selection():
    a = _rows(("exon", 0, 100), ("CDS", 0, 30, 0), tid="A")
    b = _rows(("exon", 0, 100), ("CDS", 0, 60, 0), tid="B")
    c = _rows(("exon", 0, 300), tid="C")
    nc = _rows(("exon", 500, 600), tid="NC", gid="G9")
    df = pd.DataFrame(a + b + c + nc, columns=COLUMNS)
    df.loc[df["transcript_id"] == "A", "tags"] = "basic,Ensembl_canonical"
    pick = lambda sel: sorted(t.transcript_id for t in tx.build_transcripts(df, select=sel).transcripts)
    assert pick("canonical") == ["A", "NC"]  # tagged beats the longer CDS; non-coding gene kept
    assert pick("longest") == ["B", "NC"]  # longest CDS beats the longest transcript
    assert pick("all") == ["A", "B", "C", "NC"]
    nc_t = [t for t in tx.build_transcripts(df, select="all").transcripts if t.transcript_id == "NC"][0]
    assert not nc_t.coding and list(nc_t.exon_types()) == [0]
    assert len(tx.codon_table([nc_t])) == 0


def test_minus_strand_utr_positions():
    rows = _rows(("exon", 0, 20), ("exon", 30, 50), ("CDS", 10, 20, 1), ("CDS", 30, 41, 0), strand="-")
    t = tx.build_transcripts(pd.DataFrame(rows, columns=COLUMNS), select="all", on_error="error").transcripts[0]
    exons = tx.exon_table([t])
    assert list(exons.start) == [30, 20 - 20] and list(exons.rank) == [1, 2]
    # exon 1 (5'): CDS 30..41, UTR 41..50 upstream on the minus strand
    assert [tx.EXON_TYPES[i] for i in exons.exon_type] == ["utr5_cds", "cds_utr3"]
    np.testing.assert_array_equal(tx.utr_positions(exons, 0), np.arange(49, 40, -1))
    np.testing.assert_array_equal(tx.utr_positions(exons, 1), np.arange(9, -1, -1))


@pytest.mark.parametrize("annotation, fasta", [
    ("yeast_R64/S288C_R64-2-1.gff3.gz", "yeast_R64/S288C_R64-2-1.fa.gz"),
    ("yeast_chrI_ncbi/ScerR64_I.gtf.gz", "yeast_chrI_ncbi/ScerR64_I_GCF_000146045.2_R64_genomic.fna.gz"),
    ("yeast_chrI_ncbi/ScerR64_I.gff.gz", "yeast_chrI_ncbi/ScerR64_I_GCF_000146045.2_R64_genomic.fna.gz"),
], ids=["sgd-gff3", "ncbi-gtf", "ncbi-gff3"])
def test_other_annotation_conventions_translate(annotation, fasta):
    """The same check through the GFF3 and NCBI conventions (stop codon outside the CDS in NCBI's
    GTF, merged by the annotation table)."""
    from genoattn.io.annotation import parse_annotation

    demo = Path(__file__).resolve().parents[1] / "data" / "demo"
    df, _ = parse_annotation(demo / annotation)
    model = tx.build_transcripts(df, select="all")
    assert sum(model.qc[k] for k in tx.PROBLEMS) == 0
    n = 0
    for contig in sorted({t.contig for t in model.transcripts}):
        txs = [t for t in model.transcripts if t.contig == contig and t.coding]
        exons = tx.exon_table(txs)
        codons = tx.codon_table(txs, exons, frames=(0,))
        aa = translate(codon_tokens_on_strand(codons, contig_tokens(contig, str(demo / fasta))))
        bounds = np.searchsorted(exons.transcript_index[codons.exon], np.arange(len(txs) + 1))
        for i, t in enumerate(txs):
            p = aa[bounds[i]:bounds[i + 1]].tobytes().decode()
            assert p[0] == "M" and p[-1] == "*" and "*" not in p[:-1], t.transcript_id
            n += 1
    assert n >= 94
