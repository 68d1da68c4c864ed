"""Shared fixtures: the bundled real demo data and small derived stores."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from demo_paths import ROOT, YEAST_FASTA, section

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
    tokenize.run(str(YEAST_FASTA), str(out), section("reference", include=["chrI", "chrIII"], exclude=[]))
    return out


def have_executable(name: str) -> bool:
    return shutil.which(name) is not None
