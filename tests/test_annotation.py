"""Annotation table (genoattn.io.annotation): real yeast GTF/GFF3 (SGD R64 and NCBI chrI), the
contract columns, contig mapping, and every bad-input case (message + nothing written).

Synthetic records (tags, multi-parent exons, split stop codons, bad lines) are built in the tests
from the real files' lines or written by hand, and say so."""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genoattn.contigs import ContigMap
from genoattn.io.annotation import (COLUMNS, AnnotationError, build_annotation, detect_format, parse_annotation,
                                    read_annotation, read_annotation_metadata)

ROOT = Path(__file__).resolve().parents[1]
R64 = ROOT / "data/demo/yeast_R64"
R64_FASTA = R64 / "S288C_R64-2-1.fa.gz"
R64_GTF = R64 / "S288C_R64-2-1.gtf.gz"
R64_GFF = R64 / "S288C_R64-2-1.gff3.gz"
NCBI = ROOT / "data/demo/yeast_chrI_ncbi"
NCBI_FASTA = NCBI / "ScerR64_I_GCF_000146045.2_R64_genomic.fna.gz"
NCBI_GTF = NCBI / "ScerR64_I.gtf.gz"
NCBI_GFF = NCBI / "ScerR64_I.gff.gz"

CODING_TRANSCRIPTS_R64 = 5983  # data/demo/yeast_R64/PROVENANCE.md
_COMP = str.maketrans("ACGTNacgtn", "TGCANtgcan")
_CODON = {a + b + c: "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG"[16 * i + 4 * j + k]
          for i, a in enumerate("TCAG") for j, b in enumerate("TCAG") for k, c in enumerate("TCAG")}


def translate(seq: str) -> str:
    return "".join(_CODON.get(seq[i:i + 3], "X") for i in range(0, len(seq) - len(seq) % 3, 3))


@pytest.fixture(scope="module")
def gtf():
    df, meta = parse_annotation(R64_GTF)
    return df, meta


@pytest.fixture(scope="module")
def gff():
    df, meta = parse_annotation(R64_GFF)
    return df, meta


@pytest.fixture(scope="module")
def genome():
    import pyfaidx
    fa = pyfaidx.Fasta(str(R64_FASTA), as_raw=True, sequence_always_upper=True)
    try:
        return {name: fa[name][:] for name in fa.keys()}
    finally:
        fa.close()


def raw_lines(path: Path) -> list[str]:
    with gzip.open(path, "rt") as fh:
        return fh.read().splitlines()


def spliced_cds(df: pd.DataFrame, genome: dict) -> dict[str, str]:
    """transcript_id -> CDS bases 5'->3' from the annotated phase on (the table read back on the genome)."""
    cds = df[df.feature == "CDS"]
    five = np.where(cds.strand == "+", cds.start, -cds.end)
    cds = cds.assign(_five=five).sort_values(["transcript_id", "_five"])
    parts: dict[str, list] = {}
    first_phase = {}
    for tid, contig, s, e, strand, phase in zip(cds.transcript_id, cds.contig, cds.start, cds.end, cds.strand,
                                                cds.phase):
        seq = genome[contig][s:e]
        parts.setdefault(tid, []).append(seq if strand == "+" else seq.translate(_COMP)[::-1])
        first_phase.setdefault(tid, int(phase))
    return {t: "".join(p)[first_phase[t]:] for t, p in parts.items()}


# -------------------------------------------------------------------------------------------------
# the contract
def test_columns_dtypes_and_invariants(gtf, gff):
    for df, meta in (gtf, gff):
        assert tuple(df.columns) == COLUMNS
        assert df.start.dtype == np.int64 and df.end.dtype == np.int64
        assert df.phase.dtype == np.int8 and df.source_line.dtype == np.int64
        assert set(df.feature) == {"gene", "transcript", "exon", "CDS"}
        assert (df.start >= 0).all() and (df.start < df.end).all()
        assert set(df.strand) <= {"+", "-"}
        assert (df.phase[df.feature != "CDS"] == -1).all()
        assert df.phase[df.feature == "CDS"].isin([0, 1, 2]).all()
        assert df.transcript_id[df.feature == "gene"].isna().all()
        assert df.transcript_id[df.feature != "gene"].notna().all()
        assert df.tags.notna().all() and df.gene_id.notna().all()
        assert (df.contig == df.source_contig).all()
        assert meta["format"] in ("gtf", "gff3") and len(meta["sha256"]) == 64
        # exons and CDS lie inside their transcript, transcripts inside their gene
        tx = df[df.feature == "transcript"].set_index("transcript_id")
        kids = df[df.feature.isin(["exon", "CDS"])]
        assert (kids.start.to_numpy() >= tx.start.loc[kids.transcript_id].to_numpy()).all()
        assert (kids.end.to_numpy() <= tx.end.loc[kids.transcript_id].to_numpy()).all()
        genes = df[df.feature == "gene"].set_index("gene_id")
        assert (tx.start.to_numpy() >= genes.start.loc[tx.gene_id].to_numpy()).all()
        assert (tx.end.to_numpy() <= genes.end.loc[tx.gene_id].to_numpy()).all()


def test_zero_based_half_open_against_raw_lines(gtf, gff):
    rng = np.random.default_rng()
    for (df, _), path in ((gtf, R64_GTF), (gff, R64_GFF)):
        lines = raw_lines(path)
        first_exon = df[df.feature == "exon"].iloc[0]
        cols = lines[first_exon.source_line - 1].split("\t")
        assert cols[2] == "exon"
        assert first_exon.start == int(cols[3]) - 1 and first_exon.end == int(cols[4])
        assert first_exon.end - first_exon.start == int(cols[4]) - int(cols[3]) + 1
        for i in rng.choice(len(df), size=300, replace=False):
            row = df.iloc[i]
            cols = lines[row.source_line - 1].split("\t")
            assert cols[0] == row.source_contig and cols[6] == row.strand
            assert (int(cols[3]) - 1, int(cols[4])) == (row.start, row.end)
            if row.feature == "CDS":
                assert int(cols[7]) == row.phase
            assert cols[2] in (row.feature, "mRNA", "tRNA", "ncRNA", "rRNA", "misc_RNA")


def test_gtf_and_gff3_give_the_same_exons_and_cds(gtf, gff):
    key = ["transcript_id", "feature", "contig", "start", "end", "strand", "phase"]
    a = gtf[0][gtf[0].feature.isin(["exon", "CDS"])][key].sort_values(key).reset_index(drop=True)
    b = gff[0][gff[0].feature.isin(["exon", "CDS"])][key].sort_values(key).reset_index(drop=True)
    assert len(a) == 6733 + 6310
    pd.testing.assert_frame_equal(a, b)
    ta = gtf[0][gtf[0].feature == "transcript"].set_index("transcript_id")
    tb = gff[0][gff[0].feature == "transcript"].set_index("transcript_id")
    assert set(ta.index) == set(tb.index)
    cols = ["contig", "start", "end", "strand", "gene_id", "gene_name"]
    pd.testing.assert_frame_equal(ta.loc[tb.index, cols], tb[cols])
    # the GFF3 has 6 genes without transcripts that the GTF leaves out; every GTF gene is in it
    assert set(gtf[0].gene_id) <= set(gff[0].gene_id)
    # biotypes: attributes, and the GFF3 transcript row's type when the attribute is missing
    assert set(gff[0][gff[0].feature == "gene"].gene_biotype) >= {"protein_coding", "tRNA", "ncRNA", "rRNA"}
    assert gff[0][gff[0].feature == "transcript"].transcript_biotype.notna().all()


def test_every_coding_transcript_translates_on_the_genome(gff, genome):
    df = gff[0]
    cds = df[df.feature == "CDS"]
    lengths = (cds.end - cds.start).groupby(cds.transcript_id).sum()
    assert len(lengths) == CODING_TRANSCRIPTS_R64
    assert (lengths % 3 == 0).all()
    # phase of each CDS = bases before the first whole codon, continuing across exon junctions
    five = np.where(cds.strand == "+", cds.start, -cds.end)
    ordered = cds.assign(_five=five, _len=cds.end - cds.start).sort_values(["transcript_id", "_five"])
    before = ordered.groupby("transcript_id")["_len"].cumsum() - ordered["_len"]
    assert ((3 - before % 3) % 3 == ordered.phase).all()
    assert (ordered.groupby("transcript_id").size() > 1).sum() > 100  # spliced ones are among them
    proteins = {t: translate(s) for t, s in spliced_cds(df, genome).items()}
    bad = [t for t, p in proteins.items() if not (p.startswith("M") and p.endswith("*") and "*" not in p[:-1])]
    assert not bad, f"{len(bad)} transcripts do not translate M...*: {bad[:5]}"


def test_multi_exon_minus_strand_transcript(gff, genome):
    """A spliced gene on the minus strand: exons in genomic order, CDS read on the reverse complement."""
    df = gff[0]
    cds = df[df.feature == "CDS"]
    n = cds.groupby("transcript_id").size()
    spliced = n[n > 1].index
    minus = cds[cds.transcript_id.isin(spliced) & (cds.strand == "-")]
    assert minus.transcript_id.nunique() > 10
    tid = minus.transcript_id.iloc[0]
    prot = translate(spliced_cds(df[df.transcript_id == tid], genome)[tid])
    assert prot[0] == "M" and prot[-1] == "*" and "*" not in prot[:-1]


# -------------------------------------------------------------------------------------------------
# NCBI chrI: native names, NCBI conventions
@pytest.mark.parametrize("path", [NCBI_GTF, NCBI_GFF], ids=["gtf", "gff3"])
@pytest.mark.parametrize("fasta", [R64_FASTA, NCBI_FASTA], ids=["R64_fasta", "ncbi_fasta"])
def test_ncbi_chrI_maps_to_chrI_with_aliases(tmp_path, path, fasta):
    out = tmp_path / "annotation.parquet"
    meta = build_annotation(path, fasta, out, contig_aliases={"NC_001133.9": "chrI"}, reference="yeast")
    df = read_annotation(out)
    assert tuple(df.columns) == COLUMNS
    assert set(df.contig) == {"chrI"} and set(df.source_contig) == {"NC_001133.9"}
    assert meta["genoattn_annotation"]["unmapped_rows"] == 0
    genes = df[df.feature == "gene"]
    assert set(genes.gene_biotype) >= {"protein_coding", "tRNA", "ncRNA", "snoRNA", "pseudogene"}
    tx = df[df.feature == "transcript"]
    assert set(tx.transcript_biotype) >= {"mRNA", "tRNA"}
    assert (df.tags == "").all()  # these NCBI files carry no tag attributes (locus_tag is not a tag)
    assert genes.set_index("gene_id").loc["YAL068C", "gene_name"] == "PAU8"
    assert tx.set_index("transcript_id").loc["NM_001180043.1", "gene_id"] == "YAL068C"
    md = read_annotation_metadata(out)
    assert md["format"] == ("gtf" if path == NCBI_GTF else "gff3") and md["source"] == str(path)
    assert md["genoattn_annotation"]["contig_map"] == {"NC_001133.9": "chrI"}


def test_ncbi_gtf_cds_gets_its_stop_codon_and_matches_gff3(genome):
    """NCBI GTF CDS rows exclude the stop codon (GTF convention), its GFF3 includes it; the table
    always includes it, so both give the same CDS, and every complete CDS ends at a stop."""
    cmap = ContigMap(["chrI"], {"NC_001133.9": "chrI"})
    a, meta = parse_annotation(NCBI_GTF, contig_map=cmap)
    b, _ = parse_annotation(NCBI_GFF, contig_map=cmap)
    assert meta["genoattn_annotation"]["stop_codons_merged_into_cds"] == 94
    key = ["transcript_id", "start", "end", "strand", "phase"]
    ca = a[a.feature == "CDS"][key].sort_values(key).reset_index(drop=True)
    cb = b[b.feature == "CDS"][key].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(ca, cb)
    # raw stop_codon rows lie inside the table's CDS
    for line in raw_lines(NCBI_GTF):
        cols = line.split("\t")
        if len(cols) == 9 and cols[2] == "stop_codon":
            tid = cols[8].split('transcript_id "')[1].split('"')[0]
            c = ca[ca.transcript_id == tid]
            assert ((c.start <= int(cols[3]) - 1) & (c.end >= int(cols[4]))).any()
    proteins = [translate(s) for s in spliced_cds(a, genome).values()]
    complete = [p for p in proteins if p.startswith("M") and p.endswith("*")]
    assert len(complete) >= 90 and all("*" not in p[:-1] for p in complete)


def test_contig_missing_from_the_reference(tmp_path):
    """No contig of the annotation is in the FASTA: an error with the alias fix, and no table."""
    out = tmp_path / "annotation.parquet"
    with pytest.raises(AnnotationError) as err:
        build_annotation(NCBI_GFF, R64_FASTA, out, reference="yeast")  # no alias
    text = str(err.value)
    assert "NC_001133.9" in text and "references.yeast.contig_aliases" in text and "Fix" in text
    assert not out.exists()


def test_partly_missing_contig_keeps_the_rest(tmp_path):
    """Synthetic: the real R64 GTF with chrII renamed to a contig the FASTA lacks."""
    src = tmp_path / "renamed.gtf"
    src.write_text("\n".join(l.replace("chrII\t", "chrUnknown\t", 1) if l.startswith("chrII\t") else l
                             for l in raw_lines(R64_GTF)) + "\n")
    out = tmp_path / "a.parquet"
    build_annotation(src, R64_FASTA, out, reference="yeast")
    df = read_annotation(out)
    missing = df[df.contig.isna()]
    assert len(missing) > 0 and set(missing.source_contig) == {"chrUnknown"}
    assert "chrII" not in set(df.contig.dropna()) and "chrI" in set(df.contig)
    assert read_annotation_metadata(out)["genoattn_annotation"]["unmapped_contigs"] == {"chrUnknown": len(missing)}
    # rows are grouped by reference contig order, unmapped ones last
    order = {c: i for i, c in enumerate(["chrI", "chrIII", "chrIV"])}
    seen = [order[c] for c in dict.fromkeys(df.contig.dropna()) if c in order]
    assert seen == sorted(seen) and pd.isna(df.contig.iloc[-1])


# -------------------------------------------------------------------------------------------------
# compression and formats
def test_plain_gzip_and_bgzip_give_the_same_table(tmp_path, gtf):
    import pysam
    plain = tmp_path / "a.gtf"
    with gzip.open(R64_GTF, "rb") as src, open(plain, "wb") as dst:
        shutil.copyfileobj(src, dst)
    bgz = tmp_path / "a.gtf.bgz.gz"
    pysam.tabix_compress(str(plain), str(bgz))
    with open(bgz, "rb") as fh:
        assert fh.read(16)[12:14] == b"BC"
    for p in (plain, bgz):
        df, meta = parse_annotation(p)
        assert meta["format"] == "gtf"
        pd.testing.assert_frame_equal(df, gtf[0])


def test_format_detection_from_content_not_extension(tmp_path):
    lines = raw_lines(R64_GFF)
    p = tmp_path / "annotation.txt"  # no telling extension, no ##gff-version header
    p.write_text("\n".join(l for l in lines if not l.startswith("#")) + "\n")
    assert detect_format(p) == "gff3"
    q = tmp_path / "annotation.gff"  # a GTF with a misleading extension
    q.write_text("\n".join(raw_lines(R64_GTF)[:40]) + "\n")
    assert detect_format(q) == "gtf"


def test_gtf_without_gene_and_transcript_rows(tmp_path, gtf):
    """The real GTF with its gene and transcript rows removed: they are derived from exons/CDS."""
    p = tmp_path / "exons_only.gtf"
    p.write_text("\n".join(l for l in raw_lines(R64_GTF) if l.split("\t")[2] in ("exon", "CDS")) + "\n")
    df, meta = parse_annotation(p)
    ref = gtf[0]
    cols = ["feature", "contig", "start", "end", "strand", "phase", "gene_id", "gene_name", "gene_biotype",
            "transcript_id"]
    pd.testing.assert_frame_equal(df[cols].reset_index(drop=True), ref[cols].reset_index(drop=True))


def test_gff3_hierarchy_tags_and_percent_decoding(tmp_path):
    """Synthetic GFF3 (hand-written, Ensembl/RefSeq conventions): multi-parent exons, a CDS whose
    Parent is the gene, a top-level mRNA, percent-encoded values, tags and canonical markers."""
    text = """##gff-version 3
chrI\ttest\tgene\t1001\t3000\t.\t+\t.\tID=gene:G1;Name=ABC%3B1;biotype=protein_coding
chrI\ttest\tmRNA\t1001\t3000\t.\t+\t.\tID=transcript:T1;Parent=gene:G1;biotype=protein_coding;tag=basic,Ensembl_canonical,MANE Select
chrI\ttest\tmRNA\t1001\t2500\t.\t+\t.\tID=transcript:T2;Parent=gene:G1;biotype=nonsense_mediated_decay;tag=RefSeq Select
chrI\ttest\texon\t1001\t1200\t.\t+\t.\tID=exon:E1;Parent=transcript:T1,transcript:T2
chrI\ttest\texon\t1501\t3000\t.\t+\t.\tParent=transcript:T1
chrI\ttest\texon\t1501\t2500\t.\t+\t.\tParent=transcript:T2
chrI\ttest\tCDS\t1101\t1200\t.\t+\t0\tID=cds:P1;Parent=transcript:T1
chrI\ttest\tCDS\t1501\t1700\t.\t+\t2\tID=cds:P1;Parent=transcript:T1
chrI\ttest\tgene\t5001\t5300\t.\t-\t.\tID=gene-G2;gene=XYZ;gene_biotype=protein_coding;canonical=true
chrI\ttest\tCDS\t5001\t5300\t.\t-\t0\tParent=gene-G2
chrI\ttest\tmRNA\t7001\t7600\t.\t-\t.\tID=rna-NM_1.1;gene=LONE;transcript_id=NM_1.1
chrI\ttest\texon\t7001\t7600\t.\t-\t.\tParent=rna-NM_1.1
chrI\ttest\tpseudogene\t9001\t9100\t.\t+\t.\tID=gene:P9;Name=PSI
chrI\ttest\tregion\t1\t20000\t.\t+\t.\tID=chrI
"""
    p = tmp_path / "synthetic.gff3"
    p.write_text(text)
    df, meta = parse_annotation(p)
    g1 = df[df.gene_id == "G1"]
    assert g1[g1.feature == "gene"].gene_name.item() == "ABC;1"
    t1 = g1[g1.transcript_id == "T1"]
    t2 = g1[g1.transcript_id == "T2"]
    assert t1[t1.feature == "transcript"].tags.item() == "basic,Ensembl_canonical,MANE_Select"
    assert t2[t2.feature == "transcript"].tags.item() == "RefSeq_Select"
    assert (t1.tags == "basic,Ensembl_canonical,MANE_Select").all()
    assert t2.transcript_biotype.iloc[0] == "nonsense_mediated_decay"
    # the multi-parent exon belongs to both transcripts, from the same source line
    e1 = g1[(g1.feature == "exon") & (g1.start == 1000)]
    assert sorted(e1.transcript_id) == ["T1", "T2"] and e1.source_line.nunique() == 1
    assert list(t1[t1.feature == "CDS"].phase) == [0, 2]
    # CDS directly under a gene: synthesized transcript (and exon) with the gene's id
    g2 = df[df.gene_id == "G2"]
    assert set(g2.feature) == {"gene", "transcript", "exon", "CDS"}
    assert (g2.transcript_id.dropna() == "G2").all() and g2.gene_name.iloc[0] == "XYZ"
    assert g2[g2.feature == "gene"].tags.item() == "canonical"
    assert g2[g2.feature == "exon"][["start", "end"]].values.tolist() == [[5000, 5300]]
    # a top-level mRNA gets a gene of its own
    lone = df[df.transcript_id == "NM_1.1"]
    assert lone.gene_name.iloc[0] == "LONE" and lone.transcript_biotype.iloc[0] == "mRNA"
    assert len(df[(df.feature == "gene") & (df.gene_id == lone.gene_id.iloc[0])]) == 1
    # a childless pseudogene is a gene row (biotype from its type); 'region' is not a feature
    psi = df[df.gene_id == "P9"]
    assert list(psi.feature) == ["gene"] and psi.gene_biotype.item() == "pseudogene"
    assert "chrI" not in set(df.gene_id)
    info = meta["genoattn_annotation"]
    assert info["transcripts_synthesized"] == 1 and info["genes_synthesized"] == 1


def test_gtf_tags_split_stop_codon_and_missing_phase(tmp_path):
    """Synthetic GTF (hand-written, Ensembl/GENCODE conventions): repeated tag attributes, a stop codon
    split by an intron (minus strand), and CDS frame '.' computed from the CDS order."""
    attrs = 'gene_id "G"; transcript_id "T"; gene_name "N"; gene_type "protein_coding"; ' \
            'transcript_type "protein_coding"; tag "basic"; tag "Ensembl_canonical"; tag "MANE_Select";'
    rows = [
        ("gene", 101, 400, "."), ("transcript", 101, 400, "."),
        ("exon", 101, 101, "."), ("exon", 201, 400, "."),
        ("CDS", 203, 400, "."),  # frame unknown: computed 0 at the 5' end (minus strand: end 400)
        ("stop_codon", 201, 202, "0"), ("stop_codon", 101, 101, "0"),  # split 2 + 1 bases
    ]
    text = "".join(f"chrI\tt\t{f}\t{s}\t{e}\t.\t-\t{ph}\t{attrs}\n" for f, s, e, ph in rows)
    p = tmp_path / "split_stop.gtf"
    p.write_text(text)
    df, meta = parse_annotation(p)
    assert (df.tags == "basic,Ensembl_canonical,MANE_Select").all()
    cds = df[df.feature == "CDS"].sort_values("start")
    assert cds[["start", "end"]].values.tolist() == [[100, 101], [200, 400]]
    assert (cds.end - cds.start).sum() % 3 == 0
    # minus strand: 5' CDS is [200, 400) (200 bp, phase 0); the 1-base piece continues at phase (3 - 200 % 3) % 3
    assert cds.phase.tolist() == [(3 - 200 % 3) % 3, 0]
    info = meta["genoattn_annotation"]
    assert info["stop_codons_merged_into_cds"] == 1 and info["cds_rows_from_split_stop_codons"] == 1
    assert df.gene_biotype.iloc[0] == "protein_coding" and df[df.feature == "exon"].transcript_biotype.iloc[0] == "protein_coding"


# -------------------------------------------------------------------------------------------------
# writing, reading, the workflow step
def test_write_read_round_trip(tmp_path):
    out = tmp_path / "sub" / "annotation.parquet"
    meta = build_annotation(R64_GFF, R64_FASTA, out, reference="yeast_R64")
    df = read_annotation(out)
    assert tuple(df.columns) == COLUMNS and df.phase.dtype == np.int8
    again, _ = parse_annotation(R64_GFF, contig_map=ContigMap(list(df.contig.unique())))
    pd.testing.assert_frame_equal(df, again, check_like=False)
    md = read_annotation_metadata(out)
    assert {"source", "format", "sha256"} <= set(md) and md["sha256"] == meta["sha256"]
    assert df.attrs["format"] == "gff3"
    assert not list(out.parent.glob("*.tmp-*"))


# -------------------------------------------------------------------------------------------------
# bad input: a clear error with file, line, record and fix; nothing written
def _bad(tmp_path, name, text_or_bytes, fasta=R64_FASTA):
    p = tmp_path / name
    if isinstance(text_or_bytes, bytes):
        p.write_bytes(text_or_bytes)
    else:
        p.write_text(text_or_bytes)
    out = tmp_path / "out" / "annotation.parquet"
    with pytest.raises(AnnotationError) as exc:
        build_annotation(p, fasta, out, reference="yeast")
    assert not out.exists()
    assert not list((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True
    msg = str(exc.value)
    assert str(p) in msg and "Fix:" in msg
    return msg


def _real_gtf_with(lineno: int, edit) -> str:
    """The first 200 lines of the real R64 GTF with line ``lineno`` (1-based) edited."""
    lines = raw_lines(R64_GTF)[:200]
    lines[lineno - 1] = edit(lines[lineno - 1])
    return "\n".join(lines) + "\n"


def _set_col(i, value):
    def edit(line):
        cols = line.split("\t")
        cols[i] = value
        return "\t".join(cols)
    return edit


@pytest.mark.parametrize("case,edit,expect", [
    ("columns", lambda l: "\t".join(l.split("\t")[:8]), "8 tab-separated columns"),
    ("spaces", lambda l: l.replace("\t", " "), "spaces where tabs belong"),
    ("integer", _set_col(3, "12a"), "not integers"),
    ("start_after_end", _set_col(3, "999999"), "> end"),
    ("zero_start", _set_col(3, "0"), "1-based"),
    ("strand", _set_col(6, "x"), "strand 'x'"),
    ("phase", _set_col(7, "5"), "phase '5'"),
    ("no_gene_id", lambda l: l.split("\t", 8)[0] + "\t" + "\t".join(l.split("\t")[1:8]) + '\ttranscript_id "x";',
     "without a gene_id"),
    ("beyond_contig", _set_col(4, "230219"), "beyond the length of contig 'chrI' (230,218 bp)"),
])
def test_bad_gtf_line(tmp_path, case, edit, expect):
    lineno = 44  # a CDS row of the real file
    assert raw_lines(R64_GTF)[lineno - 1].split("\t")[2] == "CDS"
    msg = _bad(tmp_path, f"{case}.gtf", _real_gtf_with(lineno, edit))
    assert expect in msg, msg
    assert f"line {lineno}:" in msg and "Record:" in msg


def test_bad_gff3_line_has_line_number(tmp_path):
    lines = raw_lines(R64_GFF)[:120]
    i = next(i for i, l in enumerate(lines) if l.startswith("chrI\t") and "\tCDS\t" in l)
    lines[i] = lines[i].replace("\t-\t", "\t*\t").replace("\t+\t", "\t*\t")
    msg = _bad(tmp_path, "strand.gff3", "\n".join(lines) + "\n")
    assert f"line {i + 1}:" in msg and "strand '*'" in msg


def test_gff3_parent_that_never_appears(tmp_path):
    lines = raw_lines(R64_GFF)[:200]
    i = next(i for i, l in enumerate(lines) if "\texon\t" in l and i > 60)
    parent = lines[i].split("Parent=")[1].split(";")[0]
    # drop the transcript row that the exon points at (what a grep-cut subset does)
    lines = [l for l in lines if f"ID={parent};" not in l and not l.endswith(f"ID={parent}")]
    exon_line = next(j for j, l in enumerate(lines) if f"Parent={parent}" in l and "\texon\t" in l) + 1
    msg = _bad(tmp_path, "orphan.gff3", "\n".join(lines) + "\n")
    assert f"Parent {parent!r} never appears" in msg and f"line {exon_line}:" in msg


def test_unknown_format(tmp_path):
    msg = _bad(tmp_path, "genes.bed", "chrI\t100\t200\tYAL068C\t0\t-\n" * 3)
    assert "cannot tell whether this is GTF or GFF3" in msg
    msg = _bad(tmp_path, "genes.fa", ">chrI\nACGT\n")
    assert "GTF or GFF3" in msg
    msg = _bad(tmp_path, "genes.gtf.bz2", b"BZh91AY&SY" + bytes(20))
    assert "bzip2" in msg


def test_truncated_gzip(tmp_path):
    data = R64_GTF.read_bytes()
    msg = _bad(tmp_path, "truncated.gtf.gz", data[: len(data) // 2])
    assert "truncated" in msg


def test_empty_annotation(tmp_path):
    msg = _bad(tmp_path, "empty.gff3", "##gff-version 3\nchrI\tx\tregion\t1\t100\t+\t.\t.\tID=r\n")
    assert "no gene, transcript, exon or CDS" in msg


@pytest.mark.workflow
def test_workflow_annotate_target(tmp_path):
    """`snakemake annotate` on the demo config in a temporary directory."""
    for name in ("Snakefile", "workflow", "config", "data", "envs"):
        if (ROOT / name).exists():
            os.symlink(ROOT / name, tmp_path / name)
    res = subprocess.run([sys.executable, "-m", "snakemake", "annotate", "--cores", "1", "--quiet"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    out = tmp_path / "results/yeast_R64/annotation.parquet"
    df = read_annotation(out)
    assert tuple(df.columns) == COLUMNS and df.contig.notna().all()
    assert (tmp_path / "results/yeast_R64/logs/annotation.log").exists()
    assert (tmp_path / "results/yeast_R64/benchmarks/annotation.tsv").exists()


def test_ensembl_style_gff3_and_unstranded_rows(tmp_path):
    """Synthetic GFF3 in Ensembl's layout (gene_id/transcript_id attributes, ### separators,
    chromosome and biological_region rows), a gene row without strand (taken from its transcript),
    a UCSC track line in a GTF."""
    text = """##gff-version 3
##sequence-region   I 1 230218
I\tEnsembl\tchromosome\t1\t230218\t.\t.\t.\tID=chromosome:I;Alias=BK006935.2
I\tSGD\tgene\t335\t649\t.\t.\t.\tID=gene:YAL069W;biotype=protein_coding;gene_id=YAL069W;logic_name=sgd
I\tSGD\tmRNA\t335\t649\t.\t+\t.\tID=transcript:YAL069W_mRNA;Parent=gene:YAL069W;biotype=protein_coding;tag=Ensembl_canonical;transcript_id=YAL069W_mRNA
I\tSGD\texon\t335\t649\t.\t+\t.\tParent=transcript:YAL069W_mRNA;Name=YAL069W_mRNA-E1;constitutive=1;exon_id=YAL069W_mRNA-E1;rank=1
I\tSGD\tCDS\t335\t649\t.\t+\t0\tID=CDS:YAL069W;Parent=transcript:YAL069W_mRNA;protein_id=YAL069W
###
I\tEnsembl\tbiological_region\t700\t800\t.\t+\t.\tlogic_name=eponine
"""
    p = tmp_path / "ensembl.gff3"
    p.write_text(text)
    df, _ = parse_annotation(p, contig_map=ContigMap(["chrI"], {}, "auto"))
    assert list(df.feature) == ["gene", "transcript", "exon", "CDS"]
    assert (df.strand == "+").all() and (df.contig == "chrI").all() and (df.source_contig == "I").all()
    assert (df.gene_id == "YAL069W").all() and df.transcript_id.iloc[1] == "YAL069W_mRNA"
    assert list(df.tags) == ["", "Ensembl_canonical", "Ensembl_canonical", "Ensembl_canonical"]
    assert df.start.iloc[0] == 334 and df.end.iloc[0] == 649
    g = tmp_path / "ucsc.gtf"
    g.write_text('track name=genes\n' + "\n".join(raw_lines(R64_GTF)[:8]) + "\n")
    df, meta = parse_annotation(g)
    assert meta["format"] == "gtf" and df.source_line.min() == 2
