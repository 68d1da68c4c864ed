"""Level-1 masked-base training on the real yeast chrI + chrIII tokens: the objective's masking
contract, that training lowers the held-out loss, and that the checkpoint drives level 1."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import yaml

from demo_paths import YEAST_FASTA
from genoattn import alphabet
from genoattn.cli import main
from genoattn.io.store import read_attrs
from genoattn.training.masked_bases import ACGT, GenomeWindows, mask_batch

SMALL = {"window": 128, "stride": 128, "dim": 32, "heads": 2, "batch_size": 64, "reverse_complement": False}


def test_masking_hides_only_bases_and_keeps_the_rest(yeast_tokens):
    rng = np.random.default_rng()
    data = GenomeWindows(str(yeast_tokens), 200)
    windows = data.draw(64, rng, 0.5)
    inputs, target = mask_batch(windows, rng, 0.15)
    hidden = target >= 0
    assert 0.10 < hidden.sum() / np.isin(windows, ACGT).sum() < 0.20
    assert (inputs[hidden] == alphabet.N).all() and set(np.unique(target[hidden])) <= {0, 1, 2, 3}
    for w, x, t in zip(windows, inputs, target):
        rc = alphabet.COMPLEMENT[w[::-1]]
        src = w if np.array_equal(x[t < 0], w[t < 0]) else rc
        assert np.array_equal(x[t < 0], src[t < 0])             # unhidden positions untouched
        assert np.array_equal(ACGT[t[t >= 0]], src[t >= 0])      # targets are the hidden bases
    with pytest.raises(ValueError, match="window"):
        GenomeWindows(str(yeast_tokens), 10_000_000)


@pytest.fixture(scope="module")
def trained(yeast_tokens, tmp_path_factory):
    wd = tmp_path_factory.mktemp("train")
    cfg = {"references": {"yeast": {"fasta": str(YEAST_FASTA), "include": ["chrI", "chrIII"]}},
           "kernels": {"device": "cpu", "backend": "cpu"}, "levels": {"level1": SMALL}}
    (wd / "config.yaml").write_text(yaml.safe_dump(cfg))
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(["train", "level1", "--config", str(wd / "config.yaml"), "--out", str(wd / "missing.safetensors")])
    assert rc == 1 and "tokenize" in err.getvalue()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        rc = main(["train", "level1", "--config", str(wd / "config.yaml"), "--tokens", str(yeast_tokens),
                   "--out", str(wd / "level1.safetensors"), "--steps", "150", "--batch", "16", "--lr", "3e-3",
                   "--log-every", "25"])
    assert rc == 0, out.getvalue()
    return wd, out.getvalue()


def test_training_lowers_the_held_out_loss(trained):
    import json

    from safetensors import safe_open

    wd, printed = trained
    with safe_open(str(wd / "level1.safetensors"), framework="pt") as fh:
        meta = fh.metadata()
        keys = set(fh.keys())
    s = json.loads(meta["training"])
    assert meta["trained"] == "true" and meta["genoattn_level"] == "level1"
    # guessing is ln 4 = 1.386 nats; yeast is 62% A/T, so even the base composition beats it
    assert s["val_loss_before"] > 1.37 and s["val_loss_after"] < s["val_loss_before"] - 0.01
    assert s["val_accuracy_after"] > 0.29
    assert not any(k.startswith("head") for k in keys)  # the prediction head is not part of the layer
    rows = (wd / "level1.safetensors.log.tsv").read_text().splitlines()
    assert rows[0] == "step\tloss\taccuracy\tlr"
    assert [int(r.split()[0]) for r in rows[1:]] == [25, 50, 75, 100, 125, 150]
    assert "levels.level1.checkpoint" in printed


def test_the_checkpoint_drives_level1(trained, yeast_tokens):
    import xarray as xr

    from genoattn.levels import level1

    wd, _ = trained
    base = {**SMALL, "seed": 0, "exon_base_dtype": "float32"}
    level1.run(str(yeast_tokens), "chrI", str(wd / "seeded.zarr"), {**base, "checkpoint": None}, device="cpu")
    level1.run(str(yeast_tokens), "chrI", str(wd / "trained.zarr"),
               {**base, "checkpoint": str(wd / "level1.safetensors")}, device="cpu")
    model = read_attrs(wd / "trained.zarr")["model"]
    assert model["trained"] is True and model["weights"] == "checkpoint"
    assert read_attrs(wd / "seeded.zarr")["model"]["trained"] is False
    a = xr.open_zarr(wd / "seeded.zarr")["window_embedding"].values
    b = xr.open_zarr(wd / "trained.zarr")["window_embedding"].values
    assert a.shape == b.shape and np.isfinite(b).all() and not np.allclose(a, b)
