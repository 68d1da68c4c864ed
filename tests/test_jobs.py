"""The job specification (genoattn/jobs.py): one source for the rules and the CLI; params are exactly the keys
a job reads, in canonical order; a user's --configfile replaces the demo config; parsing the workflow imports
no torch and runs the pre-flight once, not in every cluster job."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from demo_paths import DEMO, ROOT, VCF_1KG, YEAST_COOL, YEAST_FASTA, YEAST_GTF
from genoattn import jobs as J
from genoattn.config import validate_config
from genoattn.workflow import Layout

CFG = {"references": {"yeast": {"fasta": str(YEAST_FASTA), "annotation": str(YEAST_GTF), "hic": str(YEAST_COOL),
                                "include": ["chrI", "chrIII"], "held_out": {"test": ["chrIII"]},
                                "variants": str(DEMO / "yeast_R64" / "effects_demo.vcf.gz")}},
       "cohorts": {"kg": {"vcf": str(VCF_1KG), "regions": ["20:1500000-1540000"], "split_bp": 20000}}}


def _layout(cfg=CFG):
    return Layout(validate_config(cfg))


def test_params_are_the_projection_of_the_keys_a_job_reads():
    L = _layout()
    w = {"reference": "yeast", "contig": "chrI"}
    p = J.spec("level1_contig").params(L, w)
    assert set(p) == {"levels", "kernels"} and set(p["levels"]) == {"level1"}
    assert p["levels"]["level1"] == L.level("level1") and p["kernels"] == L.config["kernels"]
    g = J.spec("hic_graph").params(L, w)
    assert "trans_top_percent" not in g["levels"]["hic"] and "top_percent" in g["levels"]["hic"]
    assert set(g["references"]["yeast"]) == {"hic_resolution", "hic_balance", "contig_aliases", "chr_prefix"}
    t = J.spec("tokenize_reference").params(L, {"reference": "yeast"})
    assert set(t["references"]["yeast"]) == {"contig_aliases", "include", "exclude"}  # no hic_* keys
    train = J.spec("train_level1").params(L, {"reference": "yeast"})
    assert set(train["levels"]["level1"]) == set(J.LEVEL1_MODEL_KEYS)  # the keys that shape the module


def test_params_do_not_depend_on_key_order():
    def reorder(x):
        return {k: reorder(x[k]) for k in reversed(list(x))} if isinstance(x, dict) else x

    a, b = _layout(), _layout(reorder(CFG))
    for spec in J.SPECS.values():
        for w in spec.expand(a):
            pa, pb = spec.params(a, w), spec.params(b, w)
            assert pa == pb and repr(pa) == repr(pb), spec.rule  # Snakemake compares params by repr


def test_every_input_is_made_by_a_rule_or_is_a_user_file():
    L = _layout()
    outputs = {p for paths in J.targets(L).values() for p in paths}
    outputs |= {J.spec(r).output_path(L, w) for r in J.SPECS for w in J.spec(r).expand(L)}
    user = {str(YEAST_FASTA), str(YEAST_GTF), str(YEAST_COOL), str(VCF_1KG), f"{VCF_1KG}.csi",
            f"{YEAST_FASTA}.fai", f"{YEAST_FASTA}.gzi", CFG["references"]["yeast"]["variants"]}
    for spec in J.SPECS.values():
        for w in spec.expand(L):
            for value in spec.inputs(L, w).values():
                for path in [value] if isinstance(value, str) else value:
                    assert path in outputs or path in user, (spec.rule, path)
                    if path in outputs:
                        assert J.producer(L, path) is not None


def test_the_cli_builds_the_jobs_the_rules_run(tmp_path):
    from genoattn.cli_jobs import COMMANDS, Context, build_jobs

    L = _layout()
    ctx = Context(L.config, "c.yaml")
    for command, rules in COMMANDS.items():
        sel = {"cohort": "kg"} if command in ("genotypes", "level6") else {"reference": "yeast"}
        jobs = build_jobs(command, ctx, **sel)
        for cj in jobs:
            spec = J.spec(cj.job.rule)
            assert cj.job.inputs == spec.inputs(L, cj.job.wildcards)
            assert cj.job.config == spec.params(L, cj.job.wildcards)
            assert cj.output == spec.output_path(L, cj.job.wildcards)
        assert {cj.job.rule for cj in jobs} == {r for r, _ in rules}


def _snakemake(wd, *args, env=None):
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(wd), "--cores", "1",
           *args]
    return subprocess.run(cmd, cwd=wd, capture_output=True, text=True, env=env)


@pytest.mark.workflow
def test_a_users_configfile_replaces_the_demo_config(tmp_path):
    """From the repository root (where the demo config is): only the user's cohort is planned."""
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump({"cohorts": {"mine": {"vcf": str(VCF_1KG)}}, "results": str(tmp_path / "res")}))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile", str(mine)],
                          cwd=ROOT, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "cohort=mine" in out and "yeast_R64" not in out and "g1k_phased" not in out
    # and check-config sees the same config: one cohort, no reference (a cohorts-only config is valid)
    from genoattn.cli import main

    assert main(["check-config", str(mine)]) == 0


@pytest.mark.workflow
def test_parsing_the_workflow_imports_no_torch_and_cluster_jobs_skip_the_preflight(tmp_path):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import sys\n"
        "class NoTorch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ImportError('torch imported while parsing the workflow')\n"
        "sys.meta_path.insert(0, NoTorch())\n")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(CFG))
    import os

    env = {**os.environ, "PYTHONPATH": f"{hook}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = _snakemake(tmp_path, "-n", "--configfile", str(cfg), env=env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    # an input the pre-flight refuses: the planning process stops, a job process (--mode subprocess,
    # what a cluster job runs) parses the workflow without checking every input again
    import h5py
    import shutil

    bad = tmp_path / "nan.cool"
    shutil.copy(YEAST_COOL, bad)
    with h5py.File(bad, "r+") as f:
        f["bins"]["weight"][:] = np.nan
    cfg.write_text(yaml.safe_dump({**CFG, "references": {"yeast": {**CFG["references"]["yeast"], "hic": str(bad)}}}))
    main_proc = _snakemake(tmp_path, "-n", "--configfile", str(cfg))
    assert main_proc.returncode != 0 and "pre-flight checks failed" in main_proc.stdout + main_proc.stderr
    job_proc = _snakemake(tmp_path, "-n", "--mode", "subprocess", "--configfile", str(cfg))
    assert "pre-flight" not in job_proc.stdout + job_proc.stderr


def test_model_json_of_a_spec_job_is_json(tmp_path):
    """A job round-trips through JSON (how torchrun ranks receive it)."""
    L = _layout()
    job = J.spec("train_level1").job(L, {"reference": "yeast"})
    assert J.Job(**json.loads(json.dumps(job.__dict__))) == job
