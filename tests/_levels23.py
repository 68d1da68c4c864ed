"""Helpers of the level 2/3 tests (owned by the levels 2-3 work): the real yeast annotation as
an annotation table, and level-1-like stores built from the contract with StoreWriter."""

from __future__ import annotations

import gzip
import re
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from demo_paths import section
from genoattn import alphabet

ROOT = Path(__file__).resolve().parents[1]
YEAST = ROOT / "data" / "demo" / "yeast_R64"
GTF = YEAST / "S288C_R64-2-1.gtf.gz"
FASTA = YEAST / "S288C_R64-2-1.fa.gz"
COLUMNS = ["feature", "contig", "source_contig", "start", "end", "strand", "phase", "gene_id", "gene_name",
           "gene_biotype", "transcript_id", "transcript_biotype", "tags", "source_line"]


def _read_gtf_minimal(path) -> pd.DataFrame:
    """A small GTF reader giving the annotation-table columns (used only when
    genoattn.io.annotation is not available)."""
    rows = []
    with gzip.open(path, "rt") as fh:
        for ln, line in enumerate(fh, 1):
            if line.startswith("#"):
                continue
            f = line.rstrip("\n").split("\t")
            if len(f) < 9 or f[2] not in ("gene", "transcript", "exon", "CDS"):
                continue
            a = dict(re.findall(r'(\S+) "([^"]*)"', f[8]))
            tags = ",".join(re.findall(r'tag "([^"]*)"', f[8]))
            rows.append((f[2], f[0], f[0], int(f[3]) - 1, int(f[4]), f[6], -1 if f[7] == "." else int(f[7]),
                         a.get("gene_id"), a.get("gene_name", ""), a.get("gene_biotype", ""),
                         a.get("transcript_id") if f[2] != "gene" else None, a.get("transcript_biotype", ""),
                         tags, ln))
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["phase"] = df["phase"].astype(np.int8)
    return df


@lru_cache(maxsize=1)
def yeast_annotation() -> pd.DataFrame:
    """The real R64 annotation as the annotation table (genoattn.io.annotation when present)."""
    try:
        from genoattn.io.annotation import parse_annotation
    except ImportError:
        return _read_gtf_minimal(GTF)
    df, _ = parse_annotation(GTF)
    return df


@lru_cache(maxsize=20)
def contig_tokens(contig: str, fasta: str | None = None) -> np.ndarray:
    import pyfaidx

    fa = pyfaidx.Fasta(str(fasta or FASTA), as_raw=True, sequence_always_upper=False, rebuild=False)
    try:
        tokens, _ = alphabet.encode(fa[contig][:])
    finally:
        fa.close()
    return tokens


def exon_union_positions(ann: pd.DataFrame, contig: str) -> np.ndarray:
    ex = ann[(ann["feature"] == "exon") & (ann["contig"] == contig)]
    mask = np.zeros(int(ex["end"].max()) + 1 if len(ex) else 0, bool)
    for s, e in zip(ex["start"], ex["end"]):
        mask[s:e] = True
    return np.flatnonzero(mask).astype(np.int64)


def write_level1_like(path, contig: str, tokens: np.ndarray, positions: np.ndarray, embedding: np.ndarray,
                      reverse_complement: bool = True, dtype=np.float32) -> str:
    """A level-1 store with the contract's exon-base arrays (synthetic embeddings, real tokens)."""
    from genoattn.io.store import atomic_store, mark_coordinates

    attrs = {"level": "level1", "contig": contig, "contig_length": int(len(tokens)), "window": 512,
             "stride": 512, "dim": int(embedding.shape[1]), "reverse_complement": reverse_complement,
             "model": {"weights": "synthetic-test"}, "config": {}, "inputs": {}}
    with atomic_store(path, attrs=attrs) as w:
        w.write("exon_base_position", positions.astype(np.int64), dims=("exon_base",))
        w.write("exon_base_embedding", embedding.astype(dtype), dims=("exon_base", "feature"))
        w.write("exon_base_token", tokens[positions].astype(np.uint8), dims=("exon_base",))
        mark_coordinates(w, "exon_base_position")
    return str(path)


def base_config(**level2) -> dict:
    return {"levels": {"level2": section("levels.level2", dim=32, heads=2, seed=3, tokens_per_call=4096, **level2),
                       "level3": section("levels.level3", dim=32, heads=4, seed=4, tokens_per_call=8192),
                       "annotation": section("levels.annotation", on_error="skip", transcripts="canonical")},
            "kernels": section("kernels", backend="auto", device="cpu")}


GENETIC_CODE = dict(zip((a + b + c for a in "TCAG" for b in "TCAG" for c in "TCAG"),
                        "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG"))


def translate_tokens(codon_tokens: np.ndarray) -> str:
    """[C, 3] transcript-strand tokens -> amino-acid string (X for ambiguous codons)."""
    letters = alphabet.DECODE[codon_tokens]
    return "".join(GENETIC_CODE.get(bytes(r).decode(), "X") for r in letters)
