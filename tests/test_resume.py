"""Resuming and rerunning: a config change reruns that level and those above it, nothing below
(Snakemake's own dry run with the default --rerun-triggers); a level-1 job SIGKILLed mid-write
leaves no complete-looking store, and the rerun (--rerun-incomplete) equals a clean run.

Real demo data (yeast chrI/chrIII, Hi-C cooler, GTF), small model dims.
"""

import copy
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from demo_paths import ROOT, YEAST_COOL, YEAST_FASTA, YEAST_GTF, store_arrays

pytestmark = pytest.mark.workflow

TINY = {
    "references": {"yeast": {"fasta": str(YEAST_FASTA), "annotation": str(YEAST_GTF), "hic": str(YEAST_COOL),
                             "include": ["chrI"]}},
    "levels": {
        "level1": {"dim": 16, "heads": 2},
        "level2": {"dim": 16, "heads": 2},
        "level3": {"dim": 16, "heads": 2},
        "level4": {"dim": 16, "heads": 2, "edge_dim": 8},
    },
}
# two branches below level 4: sequence (tokens -> level1 -> level2 -> level3) and Hi-C
TARGETS = ["level3", "hic", "level4"]


def write_config(wd: Path, cfg: dict) -> None:
    (wd / "config").mkdir(exist_ok=True)
    (wd / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))


def snakemake(wd: Path, *args, check=True, timeout=900):
    """Snakemake on the repository's workflow in ``wd`` (its config/config.yaml; a later
    --configfile in ``args`` wins)."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(wd),
           "--configfile", str(wd / "config" / "config.yaml"), "--cores", "2", *args]
    proc = subprocess.run(cmd, cwd=wd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def planned_jobs(proc) -> dict[str, int]:
    """Rule -> job count from the 'Job stats' table of a dry run."""
    out = proc.stdout + proc.stderr
    if "Nothing to be done" in out:
        return {}
    table = out.split("Job stats:", 1)[1]
    jobs = {}
    for line in table.splitlines()[3:]:
        m = re.match(r"^(\S+)\s+(\d+)$", line.strip())
        if not m or m.group(1) == "total":
            break
        jobs[m.group(1)] = int(m.group(2))
    return jobs


# -- rerun triggers (dry run over a finished run) ---------------------------------------------------
@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A real run of levels 0-4 on chrI (small dims): Snakemake records each job's params."""
    wd = tmp_path_factory.mktemp("rerun")
    write_config(wd, TINY)
    snakemake(wd, *TARGETS)
    assert planned_jobs(snakemake(wd, "-n", *TARGETS)) == {}, "a finished run should be up to date"
    return wd


# level whose config changes -> (rules that must rerun, rules below it that must not)
BELOW = {
    "level1": ({"level1_contig", "level2_contig", "level3_contig", "level4_contig"},
               {"tokenize_reference", "annotation", "hic_graph", "hic_trans"}),
    "level2": ({"level2_contig", "level3_contig", "level4_contig"},
               {"tokenize_reference", "annotation", "level1_contig", "hic_graph", "hic_trans"}),
    "hic": ({"hic_graph", "level4_contig"},
            {"tokenize_reference", "annotation", "level1_contig", "level2_contig", "level3_contig"}),
}
CHANGE = {"level1": {"seed": 1}, "level2": {"dim": 8}, "hic": {"top_percent": 3.0}}


@pytest.mark.parametrize("level", sorted(BELOW))
def test_a_config_change_reruns_that_level_and_those_above_only(finished, level):
    cfg = copy.deepcopy(TINY)
    cfg["levels"].setdefault(level, {}).update(CHANGE[level])
    wd = finished / f"changed_{level}"
    wd.mkdir()
    write_config(wd, cfg)
    # the finished run's outputs and metadata, with the changed config (--nolock: read-only plan)
    cmd_cfg = ["--configfile", str(wd / "config" / "config.yaml")]
    jobs = planned_jobs(snakemake(finished, "-n", "--nolock", *TARGETS, *cmd_cfg))
    must, must_not = BELOW[level]
    assert must <= set(jobs), f"{level} change: expected reruns {must - set(jobs)} missing; plan {jobs}"
    assert not (must_not & set(jobs)), f"{level} change reruns levels below it: {must_not & set(jobs)}"
    # and the unchanged config still plans nothing
    assert planned_jobs(snakemake(finished, "-n", "--nolock", *TARGETS)) == {}


# -- SIGKILL mid-write and resume ----------------------------------------------------------------
KILL_CFG = {
    "references": {"yeast": {"fasta": str(YEAST_FASTA), "include": ["chrI"]}},
    # small batches so the level-1 job streams for a while, writing chunk after chunk
    "levels": {"level1": {"dim": 16, "heads": 2, "batch_size": 8}},
}


def _job_pids(wd: Path) -> list[int]:
    """PIDs of the running level-1 script of this workdir (Snakemake runs .snakemake/scripts/*)."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        # every rule runs workflow/scripts/run_job.py (Snakemake copies it into .snakemake/scripts/);
        # this workdir's only job at that point is the level-1 one
        if any(str(wd) in c.decode(errors="ignore") and c.endswith(b"run_job.py") for c in cmd):
            pids.append(int(d.name))
    return pids


@pytest.fixture(scope="module")
def tokenized(tmp_path_factory):
    wd = tmp_path_factory.mktemp("kill")
    write_config(wd, KILL_CFG)
    snakemake(wd, "tokenize")
    return wd


@pytest.mark.slow
def test_sigkilled_level1_job_leaves_no_complete_store_and_the_rerun_equals_a_clean_run(tokenized, tmp_path):
    clean = tmp_path / "clean"
    shutil.copytree(tokenized, clean, symlinks=True)  # same tokens and metadata, before any kill
    killed = tokenized
    out = killed / "results/yeast/level1/chrI.zarr"

    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(killed),
           "--configfile", str(killed / "config" / "config.yaml"), "--cores", "2", "level1"]
    proc = subprocess.Popen(cmd, cwd=killed, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    job, tmp = None, None
    deadline = time.time() + 300
    try:
        while time.time() < deadline and proc.poll() is None:
            tmps = list(out.parent.glob("chrI.zarr.tmp-*")) if out.parent.exists() else []
            # mid-write: the temporary store exists and holds chunks of the embedding already
            if tmps and list(tmps[0].glob("window_embedding/c/*")):
                job, tmp = _job_pids(killed), tmps[0]
                break
            time.sleep(0.02)
        assert job, "the level-1 job finished (or never started writing) before it could be killed"
        for pid in job:  # the writer first, then Snakemake itself (as a node failure would)
            os.kill(pid, signal.SIGKILL)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    assert not out.exists(), "a killed job left a store at the final path"
    assert tmp.exists() and ".tmp-" in tmp.name, "the partial store should stay under its .tmp- name"
    assert not any(p.name == "chrI.zarr" for p in out.parent.iterdir())

    # Snakemake was killed too: its lock stays (--unlock) and the job is recorded as incomplete
    snakemake(killed, "--unlock")
    snakemake(killed, "level1", "--rerun-incomplete")
    snakemake(clean, "level1")

    resumed, reference = store_arrays(out), store_arrays(clean / "results/yeast/level1/chrI.zarr")
    assert resumed.keys() == reference.keys() and "window_embedding" in resumed
    for name in reference:
        np.testing.assert_array_equal(resumed[name], reference[name], err_msg=name)
    assert not list(out.parent.glob("chrI.zarr.tmp-*")), "the stale temporary store was not cleaned up"
    assert planned_jobs(snakemake(killed, "level1", "-n")) == {}


# -- report over the finished run --------------------------------------------------------------------
@pytest.mark.slow
def test_report_has_a_figure_per_configured_level_only(finished):
    """`snakemake plots` then `--report`: figures for levels 1-5 and Hi-C (the config has an
    annotation and a cooler, no cohort), none for level 6."""
    snakemake(finished, "plots")
    plots = finished / "results" / "yeast" / "plots"
    assert {p.name for p in plots.glob("*.png")} == {
        "level1.png", "level2.png", "level3.png", "hic.png", "level4.png", "level5.png"}
    snakemake(finished, "--report", "report.html", "plots")
    html = (finished / "report.html").read_text(errors="ignore")
    for caption in ("Level 1, nucleotide attention", "Hi-C contact graph", "Level 5, genome-wide"):
        assert caption in html
    assert "Level 6, cohort attention" not in html
