"""Level-6 training (masked genotypes) and imputation on real 1000 Genomes chr20 genotypes (a 300 kb region,
small sample sets, a tiny model trained for a few steps): the mask leaks nothing, held-out individuals are
never trained on, `genoattn train level6` + `genoattn impute` write a VCF that pysam and bcftools read, whose
GT agrees with its DS and keeps every observed call; the comparison with Beagle runs on a slice."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pysam
import pytest
import torch
import yaml

from demo_paths import DEMO, ROOT, VCF_1KG, section
from genoattn.io.store import open_group
from genoattn.io.vcf import convert_vcf
from genoattn.levels.cohort import MISSING_CODE, build_model, variant_inputs
from genoattn.training.masked_genotypes import MaskedGenotypes, hide_calls, read_codes

UNPHASED = DEMO / "1kg_chr20" / "unphased.vcf.gz"
REGION = "20:1500000-1800000"


def _opts(**kw):
    return section("levels.level6", dim=32, heads=4, window=16, n_global=3, mlp_ratio=2, layers=1, batch_size=4,
                   site_buckets=512, checkpoint=None, **kw)


def _train_cfg(**kw):
    return section("training.level6", steps=4, batch=4, max_variants=64, log_every=2, eval_every=0,
                   checkpoint_every=2, **kw)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    d = tmp_path_factory.mktemp("l6train")
    panel = list(pysam.VariantFile(str(VCF_1KG)).header.samples)[:24]
    convert_vcf(str(VCF_1KG), str(d / "panel.zarr"), panel, regions=[REGION], filters={"maf": 0.01})
    target = list(pysam.VariantFile(str(UNPHASED)).header.samples)[:10]
    convert_vcf(str(UNPHASED), str(d / "target.zarr"), target, regions=[REGION], filters={"maf": 0.01})
    return d


def test_hidden_calls_reach_the_model_only_as_missing(stores):
    codes = read_codes(open_group(stores / "panel.zarr"))
    inp, target = hide_calls(codes, 0.15, np.random.default_rng(3))
    hidden = target >= 0
    assert hidden.any() and (inp[hidden] == MISSING_CODE).all()
    assert (target[hidden] == codes[hidden]).all() and (inp[~hidden] == codes[~hidden]).all()
    # the same draw on genotypes that differ only at the hidden calls gives the same input
    other = codes.copy()
    other[hidden] = (other[hidden] + 1) % 3
    inp2, _ = hide_calls(other, 0.15, np.random.default_rng(3))
    assert np.array_equal(inp, inp2)
    # and the model's output at every token is the same for both
    opts = _opts()
    model, _ = build_model(opts, 0)
    base = model.variant_tokens(**{k: v for k, v in variant_inputs(open_group(stores / "panel.zarr"), opts).items()
                                   if k != "n_context"})
    seg = torch.zeros(codes.shape[1], dtype=torch.long)
    with torch.no_grad():
        a = model(torch.from_numpy(inp[:3]), base, seg)[1]
        b = model(torch.from_numpy(inp2[:3]), base, seg)[1]
    assert torch.equal(a, b)


def test_per_variant_inputs_carry_no_genotype(stores, tmp_path):
    """Allele, position, site and context inputs are the same whatever the genotypes are (no allele
    frequency, call rate or any other genotype summary reaches a token through them)."""
    import zarr

    shutil.copytree(stores / "panel.zarr", tmp_path / "flipped.zarr")
    g = zarr.open_group(str(tmp_path / "flipped.zarr"), mode="r+")
    gt = np.asarray(g["call_genotype"][:])
    g["call_genotype"][:] = np.where(gt >= 0, 1 - gt, gt)
    g["variant_maf"][:] = 0.5
    opts = _opts()
    a = variant_inputs(open_group(stores / "panel.zarr"), opts)
    b = variant_inputs(open_group(tmp_path / "flipped.zarr"), opts)
    for k in ("allele_class", "fourier", "site"):
        assert torch.equal(a[k], b[k]), k


def test_validation_and_test_individuals_are_never_trained_on(stores):
    opts = _opts()
    model, _ = build_model(opts, 0)
    cfg = _train_cfg()
    obj = MaskedGenotypes(model, str(stores / "panel.zarr"), None, {"validation_samples": 6}, cfg, opts,
                          test=(str(stores / "target.zarr"), None))
    ids = np.array([str(s) for s in open_group(stores / "panel.zarr")["sample_id"][:]])
    assert len(obj.validation_idx) == 6 and not set(obj.validation_idx) & set(obj.train_idx)
    assert sorted([*obj.validation_idx, *obj.train_idx]) == list(range(len(ids)))
    test_ids = set(str(s) for s in open_group(stores / "target.zarr")["sample_id"][:])
    assert not test_ids & set(ids)  # the test cohort is other people
    full = read_codes(open_group(stores / "panel.zarr"))
    assert np.array_equal(obj.train.codes, full[obj.train_idx])
    for step in range(5):  # every training row is a training individual's calls, masked
        batch = obj.batch(np.random.default_rng([0, 0, step]), 4)
        a, b = batch["start"], batch["stop"]
        inp = batch["codes"].numpy()
        for row in inp:
            shown = row != MISSING_CODE
            assert any(np.array_equal(row[shown], t[a:b][shown]) for t in obj.train.codes)
    before = obj.evaluate(model, obj.head, "test")
    assert before["calls"] > 0 and 0 <= before["dosage_r2"] <= 1


def _cohort_with_holes(src: Path, out: Path, samples: int, fraction: float, seed: int) -> int:
    """A real VCF (the first ``samples`` samples, REGION) with a seeded ``fraction`` of its calls set to ./.;
    returns how many calls were removed."""
    rng = np.random.default_rng(seed)
    removed = 0
    with pysam.VariantFile(str(src)) as vf:
        vf.subset_samples(list(vf.header.samples)[:samples])
        with pysam.VariantFile(str(out), "wz", header=vf.header) as w:
            for rec in vf.fetch(region=REGION):
                for s in rec.samples.values():
                    if rng.random() < fraction:
                        s["GT"] = (None, None)
                        removed += 1
                w.write(rec)
    pysam.tabix_index(str(out), preset="vcf", csi=True, force=True)
    return removed


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "genoattn.cli", *args], cwd=cwd, capture_output=True, text=True)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, stores):
    """A config with a training cohort (24 panel samples) and a cohort with missing calls; level 6 trained
    for 4 steps with `genoattn train level6`."""
    wd = tmp_path_factory.mktemp("l6cli")
    _cohort_with_holes(UNPHASED, wd / "holes.vcf.gz", 12, 0.1, seed=5)
    panel = list(pysam.VariantFile(str(VCF_1KG)).header.samples)[:24]
    (wd / "samples.tsv").write_text("sample_id\tcohort\n" + "".join(f"{s}\tpanel\n" for s in panel))
    cfg = {"samples": str(wd / "samples.tsv"),
           "cohorts": {"panel": {"vcf": str(VCF_1KG), "regions": [REGION], "filters": {"maf": 0.01},
                                 "held_out": {"validation_samples": 4, "test_cohort": "holes"}},
                       "holes": {"vcf": str(wd / "holes.vcf.gz"), "regions": [REGION],
                                 "filters": {"maf": 0.01, "min_call_rate": 0.0}}},
           "levels": {"level6": {k: v for k, v in _opts().items() if k in ("dim", "heads", "window", "n_global",
                                                                             "mlp_ratio", "layers", "site_buckets")}
                      | {"checkpoint": "train", "samples_per_shard": 5}},
           "training": {"level6": {k: v for k, v in _train_cfg().items() if k in ("steps", "batch", "max_variants",
                                                                                   "log_every", "eval_every")}},
           "kernels": {"device": "cpu"}}
    (wd / "config.yaml").write_text(yaml.safe_dump(cfg))
    for c in ("panel", "holes"):
        o = _cli("genotypes", "--config", "config.yaml", "--cohort", c, cwd=wd)
        assert o.returncode == 0, o.stderr
    o = _cli("train", "level6", "--config", "config.yaml", "--threads", "1", cwd=wd)
    assert o.returncode == 0, o.stderr
    return wd


def test_trained_checkpoint_records_its_held_out_individuals(trained):
    meta = json.loads((trained / "results/panel/train/level6/model.json").read_text())
    assert meta["objective"] == "masked-genotype prediction" and meta["steps"] == 4
    assert len(meta["held_out"]["validation_samples"]) == 4
    assert meta["metrics"]["test"]["calls"] > 0 and meta["training_individuals"] == 20
    assert (trained / "results/panel/train/level6/head.safetensors").exists()


def test_imputed_vcf_reads_back_with_pysam_and_bcftools_and_keeps_the_observed_calls(trained):
    o = _cli("impute", "--config", "config.yaml", "--cohort", "holes", cwd=trained)
    assert o.returncode == 0, o.stderr
    vcf = trained / "results/holes/imputed.vcf.gz"
    assert Path(f"{vcf}.csi").exists() and (trained / "results/holes/imputed.zarr").is_dir()
    g = open_group(trained / "results/holes/genotypes.zarr")
    gt_in = np.asarray(g["call_genotype"][:])
    n_missing = int((gt_in < 0).any(axis=2).sum())
    assert n_missing > 0
    with pysam.VariantFile(str(vcf)) as vf:
        assert list(vf.header.samples) == [str(s) for s in g["sample_id"][:]]
        recs = list(vf.fetch("20"))  # through the index
    assert len(recs) == gt_in.shape[0]
    assert [r.pos for r in recs] == list(np.asarray(g["variant_position"][:]))
    imputed = 0
    for v, rec in enumerate(recs):
        assert rec.info["IMP"] == int((gt_in[v] < 0).any(axis=1).sum())
        for j, s in enumerate(rec.samples.values()):
            gt, ds, gp = s["GT"], s["DS"][0], s["GP"]
            assert None not in gt
            assert abs(ds - sum(gt)) <= 0.5 + 1e-3  # GT is the genotype nearest DS
            assert abs(sum(gp) - 1) < 5e-3 and abs(gp[1] + 2 * gp[2] - ds) < 5e-3
            if (gt_in[v, j] >= 0).all():
                assert sorted(gt) == sorted(int(a) for a in gt_in[v, j]) and ds == sum(gt_in[v, j])
            else:
                imputed += 1
                assert not s.phased
    assert imputed == n_missing
    bcftools = shutil.which("bcftools")
    if bcftools:  # the Debian package (CI installs it)
        txt = subprocess.run([bcftools, "query", "-f", "[%GT\t%DS\n]", str(vcf)], capture_output=True, text=True,
                             check=True).stdout.split("\n")
        rows = [line.split("\t") for line in txt if line]
        assert len(rows) == gt_in.shape[0] * gt_in.shape[1]
        assert all(abs(float(ds) - sum(int(a) for a in gt.replace("|", "/").split("/"))) <= 0.501 for gt, ds in rows)
        stats = subprocess.run([bcftools, "stats", str(vcf)], capture_output=True, text=True, check=True).stdout
        assert f"number of records:\t{gt_in.shape[0]}" in stats


def test_impute_without_a_trained_level6_says_what_to_set(trained, tmp_path):
    cfg = yaml.safe_load((trained / "config.yaml").read_text())
    cfg["levels"]["level6"]["checkpoint"] = None
    (trained / "untrained.yaml").write_text(yaml.safe_dump(cfg))
    o = _cli("impute", "--config", "untrained.yaml", "--cohort", "holes", "--out", str(tmp_path / "x.vcf.gz"),
             cwd=trained)
    assert o.returncode == 1 and "levels.level6.checkpoint is null" in o.stderr
    assert not list(tmp_path.iterdir())  # nothing half-written


@pytest.mark.skipif(shutil.which("beagle") is None, reason="Beagle 5.4 is not installed (apt-get install beagle)")
def test_comparison_with_beagle_runs_on_a_slice(trained, tmp_path):
    out = tmp_path / "cmp.json"
    o = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "level6_imputation.py"), "--config", "config.yaml",
                        "--max-sites", "120", "--max-samples", "20", "--threads", "1", "--work-dir",
                        str(tmp_path / "work"), "--json", str(out)], cwd=trained, capture_output=True, text=True)
    assert o.returncode == 0, o.stderr[-3000:]
    res = json.loads(out.read_text())
    assert set(res["results"]) == {"Beagle 5.4, no panel", "Beagle 5.4 + panel", "allele frequency",
                                   "genoattn level 6"}
    hidden = res["hidden_calls"]
    for name, r in res["results"].items():
        assert r["calls"] == hidden and r["calls_imputed"] == hidden, name  # every method fills every hidden call
        assert 0 <= r["pooled_r2"] <= 1 and 0 <= r["concordance"] <= 1
    # Beagle with a panel on real 1000 Genomes LD beats allele-frequency imputation by far
    assert res["results"]["Beagle 5.4 + panel"]["pooled_r2"] > res["results"]["allele frequency"]["pooled_r2"] + 0.1


def test_checkpoint_train_needs_one_cohort_that_trains():
    from genoattn.config import ConfigError, validate_config

    def cfg(**held):
        return {"cohorts": {c: {"vcf": str(VCF_1KG), **({"held_out": h} if h else {})} for c, h in held.items()},
                "levels": {"level6": {"checkpoint": "train"}}}

    with pytest.raises(ConfigError, match="no cohort has held_out"):
        validate_config(cfg(a=None, b=None))
    with pytest.raises(ConfigError, match="would not know whose output to load"):
        validate_config(cfg(a={"validation_samples": 2}, b={"validation_samples": 2}, c=None))
    with pytest.raises(ConfigError, match="is not another cohort"):
        validate_config(cfg(a={"test_cohort": "a"}))
    from genoattn.workflow import Layout

    L = Layout(validate_config(cfg(a={"validation_samples": 2, "test_cohort": "b"}, b=None)))
    assert L.checkpoint("level6", "b") == L.checkpoint("level6", "a") == L.path("a", "train", "level6",
                                                                                "model.safetensors")
