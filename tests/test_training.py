"""The training stage on real yeast tokens (chrI, chrIII, chrVI; small models, few steps): masking leaks
nothing, held-out contigs are never trained on, the checkpoint drives its level, a killed job resumes to the
same result as an uninterrupted one, and DDP runs on gloo with two processes."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import yaml

from demo_paths import ROOT, YEAST_FASTA, section
from genoattn import alphabet
from genoattn.cli import main
from genoattn.io.store import read_attrs, sha256_file
from genoattn.training.masked_bases import (ACGT, GRID, GenomeWindows, MaskedBases, heldout_windows, load_contigs,
                                            mask_batch)
from genoattn.training.split import SplitError, split_contigs

CONTIGS = ["chrI", "chrIII", "chrVI"]
HELD_OUT = {"test": ["chrIII"], "validation": ["chrVI"]}
SMALL = {"window": 128, "stride": 128, "dim": 32, "heads": 2, "layers": 1, "batch_size": 64,
         "reverse_complement": False}


def _config(wd, **training) -> str:
    cfg = {"references": {"yeast": {"fasta": str(YEAST_FASTA), "include": CONTIGS, "held_out": HELD_OUT}},
           "kernels": {"device": "cpu", "backend": "cpu"}, "levels": {"level1": SMALL},
           "training": {"level1": {"steps": 30, "batch": 8, "eval_every": 0, "checkpoint_every": 10, "log_every": 10,
                                   "warmup": 5, "lr": 3e-3, **training}}}
    path = wd / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


@pytest.fixture(scope="module")
def tokens(tmp_path_factory):
    from genoattn.levels import tokenize

    wd = tmp_path_factory.mktemp("train_tokens")
    out = wd / "results" / "yeast" / "tokens.zarr"
    tokenize.run(str(YEAST_FASTA), str(out), section("reference", include=CONTIGS))
    return out


def _cli(*argv, cwd):
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(list(argv))
    finally:
        os.chdir(old)
    return rc, out.getvalue(), err.getvalue()


def _workdir(tmp_path, tokens):
    (tmp_path / "results" / "yeast").mkdir(parents=True)
    os.symlink(tokens, tmp_path / "results" / "yeast" / "tokens.zarr")
    return tmp_path


# -- the objective ---------------------------------------------------------------------------------------------
def test_masking_hides_only_bases_and_keeps_the_rest(tokens):
    rng = np.random.default_rng()
    data = GenomeWindows(load_contigs(str(tokens), ["chrI"]), 200)
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
        GenomeWindows(load_contigs(str(tokens), ["chrI"]), 10_000_000)


def test_the_input_carries_nothing_of_a_hidden_base(tokens):
    """Whatever the hidden base is, the model sees the same input and predicts the same distribution."""
    arrays = load_contigs(str(tokens), ["chrIII"])
    inputs, targets = heldout_windows(arrays, 128, seed=int(np.random.default_rng().integers(1000)))
    w, t = inputs[:4].copy(), targets[:4]
    from genoattn.levels.nucleotide import NucleotideAttention

    module = NucleotideAttention(32, 2, 128, layers=1).eval()
    head = torch.nn.Linear(32, 4)
    with torch.no_grad():
        a = head(module(torch.from_numpy(w)))
        for base in ACGT:  # the original sequence with every hidden position set to one base
            alt = np.where(t >= 0, base, w)
            masked = np.where(t >= 0, alphabet.N, alt).astype(np.uint8)
            torch.testing.assert_close(head(module(torch.from_numpy(masked))), a)


def test_held_out_windows_hide_spaced_bases_of_held_out_contigs_only(tokens):
    arrays = load_contigs(str(tokens), ["chrIII"])
    inputs, targets = heldout_windows(arrays, 128, seed=5)
    seq = arrays["chrIII"]
    assert len(inputs) == -(-len(seq) // 128)
    for k in np.random.default_rng().choice(len(inputs), 50, replace=False):
        hidden = np.flatnonzero(targets[k] >= 0)
        assert len(hidden) and (np.diff(hidden) == GRID).all()           # no two hidden within 7 bp
        truth = np.zeros(128, np.uint8)
        piece = seq[k * 128:(k + 1) * 128]
        truth[:len(piece)] = piece
        assert (inputs[k][hidden] == alphabet.N).all() and np.array_equal(ACGT[targets[k][hidden]], truth[hidden])
        keep = targets[k] < 0
        assert np.array_equal(inputs[k][keep], truth[keep])


def test_training_windows_come_from_training_contigs_only(tokens):
    split = split_contigs(CONTIGS, HELD_OUT, "references.yeast.held_out")
    assert split == {"train": ["chrI"], "validation": ["chrVI"], "test": ["chrIII"]}
    from genoattn.levels.nucleotide import NucleotideAttention

    obj = MaskedBases(NucleotideAttention(32, 2, 128, layers=1), str(tokens), split,
                      section("training.level1"))
    train_bytes = load_contigs(str(tokens), ["chrI"])["chrI"].tobytes()
    rng = np.random.default_rng()
    windows = obj.train_data.draw(100, rng, 0.5)
    assert all(train_bytes.find(w.tobytes()) >= 0 for w in windows)
    with pytest.raises(SplitError, match="chrXI.*not selected contigs"):
        split_contigs(CONTIGS, {"test": ["chrXI"]}, "references.yeast.held_out")
    with pytest.raises(SplitError, match="held_out is not set"):
        split_contigs(CONTIGS, None, "references.yeast.held_out")


# -- the training job -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tokens, tmp_path_factory):
    wd = _workdir(tmp_path_factory.mktemp("train"), tokens)
    cfg = _config(wd)
    rc, out, err = _cli("train", "level1", "--config", cfg, "--threads", "1", cwd=wd)
    assert rc == 0, err[-3000:]
    return wd, out, err


def test_training_writes_the_checkpoint_and_held_out_metrics(trained):
    from safetensors import safe_open

    wd, printed, log = trained
    d = wd / "results" / "yeast" / "train" / "level1"
    result = json.loads((d / "model.json").read_text())
    with safe_open(str(d / "model.safetensors"), framework="pt") as fh:
        meta, keys = fh.metadata(), set(fh.keys())
    assert meta["trained"] == "true" and meta["genoattn_level"] == "level1"
    assert not any(k.startswith("head") for k in keys)  # the prediction head is a training device
    m = result["metrics"]
    assert m["test"]["bases"] > 30_000 and m["validation"]["bases"] > 25_000
    # guessing is 4; yeast's base composition alone gives ~3.9: 30 small steps get below the untrained layer
    assert m["test"]["perplexity"] < m["validation_before_training"]["perplexity"]
    assert result["split"] == {"train": ["chrI"], "validation": ["chrVI"], "test": ["chrIII"]}
    assert result["identity"]["inputs"]  # the FASTA's sha256 through the tokens store
    rows = (d / "log.tsv").read_text().splitlines()
    assert rows[0].startswith("step\tloss") and [int(r.split()[0]) for r in rows[1:]] == [10, 20, 30]
    assert "tokens/s" in log and "ETA" in log and not (d / "state.pt").exists()
    assert "levels.level1.checkpoint" in printed


def test_the_checkpoint_drives_level1(trained, tokens):
    import xarray as xr

    from genoattn.levels import level1

    wd, _, _ = trained
    model = wd / "results" / "yeast" / "train" / "level1" / "model.safetensors"
    base = section("levels.level1", **SMALL, exon_base_dtype="float32")
    level1.run(str(tokens), "chrI", str(wd / "seeded.zarr"), {**base, "checkpoint": None}, device="cpu")
    level1.run(str(tokens), "chrI", str(wd / "trained.zarr"), {**base, "checkpoint": str(model)}, device="cpu")
    ident = read_attrs(wd / "trained.zarr")["model"]
    assert ident["trained"] is True and ident["checkpoint_sha256"] == sha256_file(model)
    assert read_attrs(wd / "seeded.zarr")["model"]["trained"] is False
    a = xr.open_zarr(wd / "seeded.zarr")["window_embedding"].values
    b = xr.open_zarr(wd / "trained.zarr")["window_embedding"].values
    assert a.shape == b.shape and np.isfinite(b).all() and not np.allclose(a, b)


def _train_cmd(cfg, out, *extra):
    return [sys.executable, "-m", "genoattn.cli", "train", "level1", "--config", cfg, "--out", str(out),
            "--threads", "1", *extra]


def _kill_after(cfg, out, min_step, wd) -> int:
    """Start a training run, SIGKILL it once its saved state has reached ``min_step``; the state's step."""
    proc = subprocess.Popen(_train_cmd(cfg, out), cwd=wd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    state = out / "state.pt"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and torch.load(state, weights_only=False)["step"] >= min_step:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "training ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return torch.load(state, weights_only=False)["step"]


def test_a_killed_training_job_resumes_where_it_stopped(tokens, tmp_path):
    """SIGKILL after a saved state; the rerun continues from it and ends with the weights of an uninterrupted
    run (batches are a function of the step, the state holds model, optimizer and schedule)."""
    from safetensors.torch import load_file

    wd = _workdir(tmp_path, tokens)
    cfg = _config(wd, steps=60, checkpoint_every=10, log_every=10)
    killed, whole = wd / "killed", wd / "whole"
    step = _kill_after(cfg, killed, 20, wd)
    state = killed / "state.pt"
    assert 20 <= step < 60 and not (killed / "model.safetensors").exists()
    rerun = subprocess.run(_train_cmd(cfg, killed), cwd=wd, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"resumed from {state} at step {step} of 60" in rerun.stderr
    full = subprocess.run(_train_cmd(cfg, whole), cwd=wd, capture_output=True, text=True)
    assert full.returncode == 0, full.stderr[-3000:]
    a, b = load_file(killed / "model.safetensors"), load_file(whole / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    log_a = [r.split("\t")[:3] for r in (killed / "log.tsv").read_text().splitlines()]
    log_b = [r.split("\t")[:3] for r in (whole / "log.tsv").read_text().splitlines()]
    assert log_a == log_b  # same losses at the same steps


def test_a_state_resumes_on_a_shorter_schedule_and_ends_annealed(tokens, tmp_path):
    """Another ``steps`` is not another configuration: the state continues on a schedule of the new length
    (said in the log) and the run ends with the learning rate at its floor; another ``lr`` starts over."""
    wd = _workdir(tmp_path, tokens)
    cfg = _config(wd, steps=60, checkpoint_every=10, log_every=10)
    out = wd / "run"
    step = _kill_after(cfg, out, 10, wd)
    assert step < 40
    shorter = subprocess.run(_train_cmd(cfg, out, "--steps", "40"), cwd=wd, capture_output=True, text=True)
    assert shorter.returncode == 0, shorter.stderr[-3000:]
    assert f"at step {step} of 40" in shorter.stderr
    assert "written on a 60-step schedule; it continues on a 40-step schedule" in shorter.stderr
    rows = (out / "log.tsv").read_text().splitlines()
    assert rows[-1].split("\t")[0] == "40"
    assert float(rows[-1].split("\t")[3]) == pytest.approx(0.1 * 3e-3, rel=1e-3)
    assert json.loads((out / "model.json").read_text())["steps"] == 40

    other = wd / "other"
    _kill_after(cfg, other, 10, wd)
    relearn = subprocess.run(_train_cmd(_config(wd, steps=20, lr=1e-3), other), cwd=wd, capture_output=True,
                             text=True)
    assert relearn.returncode == 0, relearn.stderr[-3000:]
    assert "another configuration" in relearn.stderr and "resumed" not in relearn.stderr


def test_two_processes_train_with_ddp_on_gloo(tokens, tmp_path):
    wd = _workdir(tmp_path, tokens)
    cfg = _config(wd, steps=10, checkpoint_every=0, log_every=5)
    proc = subprocess.run(_train_cmd(cfg, wd / "ddp", "--devices", "2"), cwd=wd, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    result = json.loads((wd / "ddp" / "model.json").read_text())
    assert result["processes"] == 2 and result["steps"] == 10
    # each step saw both processes' batches: twice the tokens of one process per step
    assert all(r["tokens_per_s"] > 0 for r in result["log"])
    # the checkpoint loads into the configured layer
    from genoattn.levels.nucleotide import level1_module
    from genoattn.model import build_module

    module, ident = build_module(lambda: level1_module(section("levels.level1", **SMALL)), "level1",
                                 str(wd / "ddp" / "model.safetensors"))
    assert ident["trained"] is True


def test_training_needs_held_out_contigs(tokens, tmp_path):
    wd = _workdir(tmp_path, tokens)
    cfg = yaml.safe_load(open(_config(wd)))
    cfg["references"]["yeast"]["held_out"] = None
    (wd / "config.yaml").write_text(yaml.safe_dump(cfg))
    rc, _, err = _cli("train", "level1", "--config", str(wd / "config.yaml"), cwd=wd)
    assert rc == 1 and "references.yeast.held_out is not set" in err and "Fix" in err
    assert ROOT.exists()


# -- level 2: masked codons ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def annotation(tmp_path_factory):
    from demo_paths import YEAST_GTF
    from genoattn.io.annotation import build_annotation

    out = tmp_path_factory.mktemp("ann") / "annotation.parquet"
    build_annotation(YEAST_GTF, YEAST_FASTA, out, reference="yeast")
    return out


def _masked_codons(tokens, annotation, **cfg):
    from genoattn.levels.codon import CodonAttention
    from genoattn.levels.nucleotide import level1_module
    from genoattn.training.masked_codons import MaskedCodons

    l1 = section("levels.level1", dim=16, heads=2, layers=1, window=128, stride=128)
    split = split_contigs(CONTIGS, HELD_OUT, "references.yeast.held_out")
    return MaskedCodons(CodonAttention(16, 16, 2, 1), level1_module(l1), l1, str(tokens), str(annotation), split,
                        section("levels.annotation"), section("training.level2", **cfg))


def test_a_hidden_codon_reaches_the_input_in_no_way(tokens, annotation):
    """Whatever bases a hidden codon has, the example (level-1 embeddings of every base, every token's
    letters) is the same: level 1 runs with them as N, and every token covering them reads N."""
    obj = _masked_codons(tokens, annotation, mask_fraction=0.2)
    ex = sorted(obj.exons["train"], key=lambda e: len(e.rows))[len(obj.exons["train"]) // 2]
    seed = int(np.random.default_rng().integers(1000))
    ref = obj.example(ex, np.random.default_rng(seed), crop=False)
    hidden = np.flatnonzero(ref["target"] >= 0)
    assert len(hidden) and (ref["frame"][hidden] == 0).all()
    positions = np.unique(ex.bases[hidden].reshape(-1))
    covering = np.isin(ex.bases, positions).any(axis=1)  # hidden codons and the frame-1/2 tokens overlapping them
    assert covering.sum() > len(hidden)
    seq = obj.arrays[ex.contig]
    original = seq[positions].copy()
    try:
        for base in ACGT:  # the truth at every hidden position replaced by one base
            seq[positions] = base
            mutated = obj.example(ex, np.random.default_rng(seed), crop=False)
            np.testing.assert_array_equal(mutated["target"] >= 0, ref["target"] >= 0)
            np.testing.assert_array_equal(mutated["emb"], ref["emb"])
            np.testing.assert_array_equal(mutated["comp"], ref["comp"])
    finally:
        seq[positions] = original
    hidden_base = np.isin(ex.bases, positions)
    assert (ref["comp"][hidden_base] == 0.25).all()  # the hidden bases read N in every token
    assert not (ref["comp"][~covering] == 0.25).all(axis=-1).any()  # the others keep their letters


def test_level2_training_job_and_its_checkpoint(tokens, annotation, tmp_path):
    wd = _workdir(tmp_path, tokens)
    os.symlink(annotation, wd / "results" / "yeast" / "annotation.parquet")
    cfg = yaml.safe_load(open(_config(wd)))
    cfg["references"]["yeast"]["annotation"] = str(ROOT / "data/demo/yeast_R64/S288C_R64-2-1.gtf.gz")
    cfg["levels"]["level2"] = {"dim": 16, "heads": 2}
    cfg["training"]["level2"] = {"steps": 6, "batch": 4, "eval_every": 0, "log_every": 3, "max_codons": 32}
    (wd / "config.yaml").write_text(yaml.safe_dump(cfg))
    rc, out, err = _cli("train", "level2", "--config", str(wd / "config.yaml"), "--threads", "1", cwd=wd)
    assert rc == 0, err[-3000:]
    d = wd / "results" / "yeast" / "train" / "level2"
    result = json.loads((d / "model.json").read_text())
    assert result["metrics"]["test"]["codons"] > 1000 and result["exons"]["train"] > 50
    assert (d / "head.safetensors").exists() and result["objective"] == "masked-codon prediction"
    from genoattn.levels.codon import CodonAttention
    from genoattn.model import build_module

    _, ident = build_module(lambda: CodonAttention(32, 16, 2, 1), "level2", str(d / "model.safetensors"))
    assert ident["trained"] is True


def test_gradient_checkpointing_gives_the_same_gradients():
    """training.<level>.gradient_checkpointing recomputes each block in the backward: same loss, same
    gradients, for the level-1 and the level-2 modules."""
    from genoattn.levels.codon import CodonAttention
    from genoattn.levels.nucleotide import NucleotideAttention

    g = torch.Generator().manual_seed(int(np.random.default_rng().integers(1 << 30)))
    l1 = NucleotideAttention(32, 2, 64, layers=2)
    tok = torch.randint(1, 5, (3, 64), generator=g, dtype=torch.uint8)
    l2 = CodonAttention(16, 32, 2, layers=2)
    emb, comp = torch.randn(20, 3, 16, generator=g), torch.rand(20, 3, 4, generator=g)
    frame, offset, cu = torch.randint(0, 3, (20,), generator=g), torch.arange(20) * 3, torch.tensor([0, 7, 20])

    def grads(module, call, ckpt):
        module.zero_grad()
        loss = call(ckpt).square().mean()
        loss.backward()
        return loss.item(), [p.grad.clone() for p in module.parameters()]

    for module, call in ((l1, lambda c: l1(tok, checkpoint_blocks=c)),
                         (l2, lambda c: l2(emb, comp, frame, offset, cu, checkpoint_blocks=c))):
        (a, ga), (b, gb) = grads(module, call, False), grads(module, call, True)
        assert a == pytest.approx(b, rel=1e-6)
        for x, y in zip(ga, gb):
            torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6)
