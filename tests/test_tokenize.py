"""Level 0 on the real demo genomes, and every bad-input case leaving no store behind."""

import gzip
import shutil

import numpy as np
import pysam
import pytest
import xarray as xr

from demo_paths import NCBI_FASTA, YEAST_FASTA, section
from genoattn import alphabet
from genoattn.io.fasta import FastaError
from genoattn.levels import tokenize


def _decode_group(store, contig):
    ds = xr.open_zarr(store, group=contig)
    return alphabet.decode(ds["tokens"].values, ds["softmask"].values), ds


def test_tokens_decode_to_the_demo_sequences_case_folded(yeast_tokens):
    fa = pysam.FastaFile(str(YEAST_FASTA))
    for contig in ("chrI", "chrIII"):
        text, ds = _decode_group(yeast_tokens, contig)
        assert ds["tokens"].dims == ("position",)
        assert ds.attrs["length"] == fa.get_reference_length(contig)
        assert text.upper() == fa.fetch(contig).upper()
    root = xr.open_zarr(yeast_tokens)
    assert root.attrs["contigs"] == ["chrI", "chrIII"]
    assert str(YEAST_FASTA) in root.attrs["inputs"]


def test_softmask_matches_the_lowercase_letters_of_the_ncbi_fasta(tmp_path):
    out = tmp_path / "tokens.zarr"
    tokenize.run(str(NCBI_FASTA), str(out), section("reference", contig_aliases={"NC_001133.9": "chrI"}))
    text, ds = _decode_group(out, "chrI")
    raw = pysam.FastaFile(str(NCBI_FASTA)).fetch("NC_001133.9")
    lower = np.frombuffer(raw.encode(), dtype=np.uint8) >= ord("a")
    assert lower.any(), "the NCBI chrI FASTA has soft-masked stretches"
    assert np.array_equal(ds["softmask"].values, lower)
    assert text == raw  # case restored from the softmask
    assert ds.attrs["source_name"] == "NC_001133.9"


def test_the_chunk_size_does_not_change_the_tokens(tmp_path, yeast_tokens):
    out = tmp_path / "t.zarr"
    tokenize.run(str(YEAST_FASTA), str(out), section("reference", include=["chrI"]), chunk_size=4099)
    a = xr.open_zarr(out, group="chrI")["tokens"].values
    b = xr.open_zarr(yeast_tokens, group="chrI")["tokens"].values
    assert np.array_equal(a, b)


def _write_fasta(path, records, bgzip=False, plain_gzip=False):
    text = "".join(f">{name} description\n" + "\n".join(seq[i:i + 60] for i in range(0, len(seq), 60)) +
                   ("\n" if seq else "") for name, seq in records)
    if plain_gzip:
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    elif bgzip:
        plain = str(path) + ".plain"
        with open(plain, "w") as fh:
            fh.write(text)
        pysam.tabix_compress(plain, str(path), force=True)
    else:
        path.write_text(text)
    return path


def _real_piece(n=300, start=10000):
    return pysam.FastaFile(str(YEAST_FASTA)).fetch("chrI", start, start + n)


def _assert_fails_without_store(fasta, out, *needles):
    with pytest.raises(FastaError) as err:
        tokenize.run(str(fasta), str(out), section("reference"))
    msg = str(err.value)
    assert str(fasta) in msg
    for n in needles:
        assert n in msg, msg
    assert not out.exists()
    assert not list(out.parent.glob(out.name + ".tmp-*"))
    return msg


def test_invalid_character_reports_contig_and_one_based_position(tmp_path):
    seq = _real_piece()
    bad = seq[:137] + "U" + seq[138:]
    fasta = _write_fasta(tmp_path / "bad.fa", [("chrA", seq), ("chrB", bad)])
    _assert_fails_without_store(fasta, tmp_path / "tokens.zarr", "'chrB'", "position 138", "'U'", "Fix")


def test_duplicate_contig_names_are_refused(tmp_path):
    seq = _real_piece()
    fasta = _write_fasta(tmp_path / "dup.fa", [("chrA", seq), ("chrB", seq), ("chrA", seq)])
    _assert_fails_without_store(fasta, tmp_path / "tokens.zarr", "'chrA'", "more than once")


def test_an_empty_contig_is_refused(tmp_path):
    fasta = _write_fasta(tmp_path / "empty.fa", [("chrA", _real_piece()), ("chrE", "")])
    _assert_fails_without_store(fasta, tmp_path / "tokens.zarr", "'chrE'", "empty")


def test_plain_gzip_is_refused_with_the_bgzip_fix(tmp_path):
    fasta = _write_fasta(tmp_path / "x.fa.gz", [("chrA", _real_piece())], plain_gzip=True)
    _assert_fails_without_store(fasta, tmp_path / "tokens.zarr", "bgzip")


def test_bgzip_and_plain_give_the_same_tokens(tmp_path):
    recs = [("chrA", _real_piece(1000)), ("chrB", _real_piece(777, 50000).lower())]
    plain = _write_fasta(tmp_path / "p.fa", recs)
    bgz = _write_fasta(tmp_path / "b.fa.gz", recs, bgzip=True)
    tokenize.run(str(plain), str(tmp_path / "p.zarr"), section("reference"))
    tokenize.run(str(bgz), str(tmp_path / "b.zarr"), section("reference"))
    for c in ("chrA", "chrB"):
        a, _ = _decode_group(tmp_path / "p.zarr", c)
        b, _ = _decode_group(tmp_path / "b.zarr", c)
        assert a == b == dict(recs)[c]


def test_an_interrupted_write_leaves_no_finished_store(tmp_path, monkeypatch):
    from genoattn.io import fasta as fasta_mod

    fasta = _write_fasta(tmp_path / "ok.fa", [("chrA", _real_piece()), ("chrB", _real_piece())])
    calls = {"n": 0}
    real = fasta_mod.encode_chunk

    def boom(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(fasta_mod, "encode_chunk", boom)
    out = tmp_path / "tokens.zarr"
    with pytest.raises(KeyboardInterrupt):
        tokenize.run(str(fasta), str(out), section("reference"))
    assert not out.exists() and not list(tmp_path.glob("tokens.zarr.tmp-*"))
