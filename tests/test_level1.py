"""Level 1: windows, padding, N handling, strand symmetry and the exon-base contract."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from demo_paths import YEAST_FASTA, section
from genoattn import alphabet
from genoattn.levels import level1, tokenize
from genoattn.levels.nucleotide import NucleotideAttention, owner_window, strand_symmetric

SMALL = section("levels.level1", window=512, stride=512, dim=32, heads=2, reverse_complement=True,
                exon_base_dtype="float32", checkpoint=None, seed=0, batch_size=32)


def _module(dim=32, heads=2, window=64, seed=None):
    torch.manual_seed(seed if seed is not None else int(np.random.default_rng().integers(1 << 30)))
    m = NucleotideAttention(dim, heads, window, layers=2, conv_kernel=9).eval()
    with torch.no_grad():  # trained-looking weights: LayerNorm biases and all, not the tidy initial values
        for p in m.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return m


def _random_tokens(b, n, codes=(1, 2, 3, 4)):
    return torch.as_tensor(np.random.default_rng().choice(codes, size=(b, n)), dtype=torch.uint8)


def test_an_ambiguity_code_embeds_as_the_mean_of_its_bases():
    m = _module()
    tok = torch.tensor([[1, 3, alphabet.LETTERS.index("R"), alphabet.N]], dtype=torch.uint8)
    e = m.base_embedding(tok)
    assert torch.allclose(e[0, 2], (e[0, 0] + e[0, 1]) / 2, atol=1e-6)
    assert torch.allclose(e[0, 3], m.base.mean(0), atol=1e-6)


def test_padding_never_changes_the_real_positions():
    m = _module(window=64)
    tok = _random_tokens(3, 41)
    padded = torch.zeros(3, 64, dtype=torch.uint8)
    padded[:, :41] = tok
    with torch.no_grad():
        a = m(tok)
        b = m(padded)[:, :41]
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_reverse_complement_average_is_strand_symmetric():
    m = _module(window=64)
    tok = _random_tokens(2, 64, codes=tuple(range(1, alphabet.N_CODES)))
    rc = torch.as_tensor(alphabet.COMPLEMENT)[tok.long().flip(1)]
    with torch.no_grad():
        fwd = strand_symmetric(m, tok)
        rev = strand_symmetric(m, rc)
    torch.testing.assert_close(fwd, rev.flip(1), rtol=1e-5, atol=1e-5)


def test_kernel_backends_agree_inside_the_layer():
    m = _module(window=64)
    tok = _random_tokens(2, 64)
    tok[1, 50:] = alphabet.PAD
    with torch.no_grad():
        ref = m(tok, backend="reference")
        cpu = m(tok, backend="cpu")
    torch.testing.assert_close(cpu, ref, rtol=1e-4, atol=1e-5)


def test_the_layer_on_the_triton_path_interpreted():
    """The Triton backend (the interpreter on CPU, in a subprocess so TRITON_INTERPRET is set before
    triton is imported) gives the reference output of the layer: a padded window, a window that is
    all padding, both strands, head dim 16, and fp16 through the kernels' tensor-core path."""
    import os
    import subprocess
    import sys

    pytest.importorskip("triton")
    code = r'''
import torch
from genoattn import alphabet
from genoattn.levels.nucleotide import NucleotideAttention, strand_symmetric
torch.manual_seed(0)
m = NucleotideAttention(64, 4, 80).eval()
tok = torch.randint(1, 5, (3, 80), dtype=torch.uint8)
tok[1, 57:] = alphabet.PAD
tok[2, :] = alphabet.PAD
with torch.no_grad():
    torch.testing.assert_close(m(tok, backend="triton"), m(tok, backend="reference"), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(strand_symmetric(m, tok, backend="triton"), strand_symmetric(m, tok, backend="reference"),
                               atol=1e-5, rtol=1e-4)
    h = m.half()
    torch.testing.assert_close(h(tok, backend="triton").float(), h.float()(tok, backend="reference"), atol=3e-2,
                               rtol=3e-2)
print("ok")
'''
    env = {**os.environ, "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-3000:]


@pytest.mark.parametrize("window,stride", [(512, 512), (512, 200), (100, 37)])
def test_owner_window_is_the_covering_window_with_the_nearest_centre(window, stride):
    length = 10_007
    pos = np.arange(length)
    own = owner_window(pos, length, window, stride)
    starts = np.arange(0, length, stride)
    assert own.min() >= 0 and own.max() < math.ceil(length / stride)
    assert np.all((starts[own] <= pos) & (pos < starts[own] + window))
    centre = starts[own] + (window - 1) / 2
    for k in (own - 1, own + 1):  # no covering neighbour is closer
        ok = (k >= 0) & (k < len(starts))
        k = np.clip(k, 0, len(starts) - 1)
        covers = ok & (starts[k] <= pos) & (pos < starts[k] + window)
        closer = np.abs(starts[k] + (window - 1) / 2 - pos) < np.abs(centre - pos) - 1e-9
        assert not np.any(covers & closer)


def test_level1_store_windows_and_xarray(yeast_tokens, tmp_path):
    out = tmp_path / "chrI.zarr"
    cfg = dict(SMALL, stride=300)
    level1.run(str(yeast_tokens), "chrI", str(out), cfg)
    ds = xr.open_zarr(out)
    length = 230218
    n = math.ceil(length / 300)
    assert ds.sizes["window"] == n and ds.sizes["feature"] == 32
    assert ds["window_embedding"].dims == ("window", "feature")
    assert "window_start" in ds.coords and "window_end" in ds.coords
    assert np.array_equal(ds["window_start"].values, np.arange(n) * 300)
    assert ds["window_end"].values[-1] == length
    assert not ds["window_skipped"].values.any()
    emb = ds["window_embedding"].values
    assert np.isfinite(emb).all() and np.abs(emb).sum(1).min() > 0
    assert ds.attrs["model"]["weights"] == "seeded-init" and ds.attrs["model"]["trained"] is False


def test_all_n_windows_are_skipped_and_flagged(tmp_path):
    import pysam

    real = pysam.FastaFile(str(YEAST_FASTA)).fetch("chrI", 20000, 21100)
    seq = real[:600] + "N" * 1100 + real[600:]
    fa = tmp_path / "n.fa"
    fa.write_text(">chrN\n" + "\n".join(seq[i:i + 60] for i in range(0, len(seq), 60)) + "\n")
    tokenize.run(str(fa), str(tmp_path / "t.zarr"), section("reference"))
    level1.run(str(tmp_path / "t.zarr"), "chrN", str(tmp_path / "l1.zarr"), dict(SMALL, window=300, stride=300))
    ds = xr.open_zarr(tmp_path / "l1.zarr")
    skipped = ds["window_skipped"].values
    # N covers [600, 1700): windows 2-4 hold only N; window 5 ([1500, 1800)) holds N and bases
    assert skipped.tolist() == [False, False, True, True, True, False, False, False]
    assert np.all(ds["window_embedding"].values[skipped] == 0)
    assert ds["window_n_bases"].values.tolist() == [300, 300, 0, 0, 0, 100, 300, 100]


def test_exon_bases_get_the_per_base_output_of_their_window(yeast_tokens, tmp_path):
    ann = pd.DataFrame({
        "feature": ["exon", "exon", "exon", "CDS", "exon"],
        "contig": ["chrI", "chrI", "chrI", "chrI", "chrIII"],
        "start": [1000, 1500, 229900, 1000, 10], "end": [1600, 1700, 230218, 1600, 20],
        "strand": ["+", "+", "-", "+", "+"],
    })
    ann_path = tmp_path / "ann.parquet"
    ann.to_parquet(ann_path)
    cfg = dict(SMALL, stride=400)
    level1.run(str(yeast_tokens), "chrI", str(tmp_path / "l1.zarr"), cfg, annotation_path=str(ann_path))
    ds = xr.open_zarr(tmp_path / "l1.zarr")
    pos = ds["exon_base_position"].values
    expect = np.concatenate([np.arange(1000, 1700), np.arange(229900, 230218)])
    assert np.array_equal(pos, expect)
    tokens = xr.open_zarr(yeast_tokens, group="chrI")["tokens"].values
    assert np.array_equal(ds["exon_base_token"].values, tokens[pos])
    # recompute the owner windows directly and compare the per-base embeddings
    module, _ = level1.load_model(cfg, torch.device("cpu"))
    own = owner_window(pos, 230218, 512, 400)
    for k in np.unique(own):          # every window: the rows gathered on the device are the per-base outputs
        batch = level1.window_batch(tokens, [k * 400], 512)
        with torch.no_grad():
            out = strand_symmetric(module, torch.from_numpy(batch))[0].numpy()
        sel = own == k
        np.testing.assert_allclose(ds["exon_base_embedding"].values[sel], out[pos[sel] - k * 400],
                                   rtol=1e-4, atol=1e-5)
