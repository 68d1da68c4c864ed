"""Shared fixtures: the bundled real demo data and small derived stores."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo"
YEAST_FASTA = DEMO / "yeast_R64" / "S288C_R64-2-1.fa.gz"
YEAST_GTF = DEMO / "yeast_R64" / "S288C_R64-2-1.gtf.gz"
YEAST_GFF3 = DEMO / "yeast_R64" / "S288C_R64-2-1.gff3.gz"
NCBI_FASTA = DEMO / "yeast_chrI_ncbi" / "ScerR64_I_GCF_000146045.2_R64_genomic.fna.gz"
YEAST_COOL = DEMO / "hic" / "yeast.10kb.cool"
VCF_1KG = DEMO / "1kg_chr20" / "reference.vcf.gz"

# Keep tests from fighting over the 2 cores of CI.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def yeast_tokens(tmp_path_factory) -> Path:
    """tokens.zarr of the demo yeast genome restricted to chrI and chrIII (small contigs)."""
    from genoattn.levels import tokenize

    out = tmp_path_factory.mktemp("tokens") / "tokens.zarr"
    tokenize.run(str(YEAST_FASTA), str(out), {"include": ["chrI", "chrIII"], "exclude": []})
    return out


def have_executable(name: str) -> bool:
    return shutil.which(name) is not None
