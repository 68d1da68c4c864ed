"""`genoattn annotate` (genoattn.cli -> genoattn.io.annotation.build_annotation), run as a subprocess on
the real NCBI chrI files (data/demo/yeast_chrI_ncbi/: FASTA record and annotation contig both named
NC_001133.9).

The chr-prefix test writes a small synthetic GTF: randomly chosen real genes of the NCBI GTF with the
contig renamed to 'I' (says so; not real data)."""

from __future__ import annotations

import gzip
import random
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from genoattn.contigs import ContigMap
from genoattn.io.annotation import COLUMNS, parse_annotation, read_annotation, read_annotation_metadata
from genoattn.io.store import sha256_file

ROOT = Path(__file__).resolve().parents[1]
NCBI = ROOT / "data/demo/yeast_chrI_ncbi"
NCBI_FASTA = NCBI / "ScerR64_I_GCF_000146045.2_R64_genomic.fna.gz"
NCBI_GTF = NCBI / "ScerR64_I.gtf.gz"
NCBI_GFF = NCBI / "ScerR64_I.gff.gz"


def annotate(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "genoattn.cli", "annotate", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("path", [NCBI_GTF, NCBI_GFF], ids=["gtf", "gff3"])
def test_annotate_with_alias(tmp_path, path):
    """--alias NC_001133.9=chrI renames the FASTA's own record (canonical name chrI) and maps the
    annotation's NC_001133.9 onto it: the same table as the API gives."""
    out = tmp_path / "sub" / "annotation.parquet"
    res = annotate("--annotation", path, "--fasta", NCBI_FASTA, "--out", out, "--alias", "NC_001133.9=chrI")
    assert res.returncode == 0, res.stderr
    df = read_annotation(out)
    assert tuple(df.columns) == COLUMNS and len(df) > 0
    assert set(df.contig) == {"chrI"} and set(df.source_contig) == {"NC_001133.9"}
    assert set(df.feature) == {"gene", "transcript", "exon", "CDS"}
    assert (df.start >= 0).all() and (df.start < df.end).all()
    md = read_annotation_metadata(out)
    info = md["genoattn_annotation"]
    assert md["format"] == ("gtf" if path == NCBI_GTF else "gff3") and md["source"] == str(path)
    assert md["sha256"] == sha256_file(path)
    assert info["contig_aliases"] == {"NC_001133.9": "chrI"} and info["chr_prefix"] == "auto"
    assert info["contig_map"] == {"NC_001133.9": "chrI"} and info["unmapped_rows"] == 0
    for feature, n in df.feature.value_counts().items():
        assert f"{n:,} {feature}" in res.stdout
    api, _ = parse_annotation(path, contig_map=ContigMap(["chrI"], {"NC_001133.9": "chrI"}))
    pd.testing.assert_frame_equal(df, api)
    assert not list(out.parent.glob("*.tmp-*"))


def test_annotate_without_alias_keeps_the_fasta_name(tmp_path):
    out = tmp_path / "annotation.parquet"
    res = annotate("--annotation", NCBI_GTF, "--fasta", NCBI_FASTA, "--out", out, "--chr-prefix", "exact")
    assert res.returncode == 0, res.stderr
    df = read_annotation(out)
    assert (df.contig == "NC_001133.9").all() and (df.source_contig == "NC_001133.9").all()
    assert read_annotation_metadata(out)["genoattn_annotation"]["chr_prefix"] == "exact"


def _renamed_genes(dst: Path, contig: str, k: int) -> set[str]:
    """Synthetic: k random real genes of the NCBI GTF, every row moved to contig ``contig``."""
    with gzip.open(NCBI_GTF, "rt") as fh:
        lines = [ln for ln in fh.read().splitlines() if ln and not ln.startswith("#")]
    gene_ids = sorted({ln.split('gene_id "')[1].split('"')[0] for ln in lines})
    chosen = set(random.Random().sample(gene_ids, k))
    kept = [ln for ln in lines if ln.split('gene_id "')[1].split('"')[0] in chosen]
    dst.write_text("".join(contig + ln[ln.index("\t"):] + "\n" for ln in kept))
    return chosen


@pytest.mark.parametrize("policy", ["auto", "exact"])
def test_annotate_chr_prefix(tmp_path, policy):
    """Annotation contig 'I' against reference contig chrI (FASTA NC_001133.9 aliased to chrI): auto maps it;
    exact leaves no row on the reference, an error with the alias that fixes it, and no table."""
    gtf = tmp_path / "renamed.gtf"
    genes = _renamed_genes(gtf, "I", 5)
    out = tmp_path / "annotation.parquet"
    res = annotate("--annotation", gtf, "--fasta", NCBI_FASTA, "--out", out, "--alias", "NC_001133.9=chrI",
                   "--chr-prefix", policy)
    if policy == "exact":
        assert res.returncode == 1 and not out.exists()
        assert "contig(s) I are not in the reference" in res.stderr and "{'I': 'chrI'}" in res.stderr
        return
    assert res.returncode == 0, res.stderr
    df = read_annotation(out)
    assert set(df[df.feature == "gene"].gene_id) == genes and (df.source_contig == "I").all()
    info = read_annotation_metadata(out)["genoattn_annotation"]
    assert (df.contig == "chrI").all() and info["unmapped_rows"] == 0


@pytest.mark.parametrize("case", ["bad_alias", "missing_annotation", "bad_chr_prefix"])
def test_annotate_bad_input_writes_nothing(tmp_path, case):
    out = tmp_path / "annotation.parquet"
    args = {"bad_alias": ["--annotation", NCBI_GTF, "--alias", "chrI"],
            "missing_annotation": ["--annotation", tmp_path / "missing.gtf"],
            "bad_chr_prefix": ["--annotation", NCBI_GTF, "--chr-prefix", "strip"]}[case]
    res = annotate(*args, "--fasta", NCBI_FASTA, "--out", out)
    assert res.returncode != 0
    expected = {"bad_alias": "expected NAME=REF", "missing_annotation": "annotation file not found",
                "bad_chr_prefix": "invalid choice"}[case]
    assert expected in res.stderr
    assert not out.exists() and not list(tmp_path.glob("*.tmp-*"))
