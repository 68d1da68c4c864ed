"""The workflow on a real one-node SLURM (marker `slurm`, run by .ci/run).

.ci/slurm_up.sh installs (apt: slurm-wlm daemons, munge, mariadb for slurmdbd) and starts munged,
mariadbd, slurmdbd, slurmctld and slurmd on localhost, with partitions named as in
profiles/slurm (cpu, default; gpu) and two fake GPUs (gres gpu:fake:2). The test runs
`snakemake --profile slurm level1` typed from the repository root (the ./slurm symlink) on the
real demo genome restricted to chrI with small dims, checks in sacct that every job went through
SLURM (CPU rule to the cpu partition, the GPU rule to gpu with a GPU allocated), that each job
shared one TRITON_CACHE_DIR on node-local scratch that outlives them, and that the stores equal a local run; then
.ci/slurm_down.sh stops the daemons (only those the test started).

    pytest -m slurm tests/test_slurm.py      (as root, on Debian/Ubuntu with apt)
"""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from demo_paths import ROOT, YEAST_FASTA, store_arrays

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]

UP = ROOT / ".ci" / "slurm_up.sh"
DOWN = ROOT / ".ci" / "slurm_down.sh"
CFG = {
    "references": {"yeast": {"fasta": str(YEAST_FASTA), "include": ["chrI"]}},
    "levels": {"level1": {"dim": 16, "heads": 2, "batch_size": 128}},
    # the GPU rule gets one of the fake GPUs, which torch cannot see: on the CPU on purpose (with `auto` the job
    # would stop: a GPU allocated but no CUDA device, see genoattn.model.pick_device)
    "kernels": {"device": "cpu"},
}


def _skip_reason() -> str | None:
    if sys.platform != "linux":
        return "needs Linux"
    if os.geteuid() != 0:
        return "needs root: .ci/slurm_up.sh installs packages and starts munged/slurmctld/slurmd"
    have_daemons = all(shutil.which(x) for x in ("slurmctld", "slurmd", "munged", "sbatch", "sacct"))
    if not have_daemons and not (shutil.which("apt-get") and shutil.which("dpkg-query")):
        return "SLURM is not installed and apt-get is unavailable to install it (Debian/Ubuntu only)"
    return None


if _skip_reason():
    pytestmark.append(pytest.mark.skip(reason=_skip_reason()))


def _running() -> bool:
    return shutil.which("scontrol") is not None and subprocess.run(
        ["scontrol", "ping"], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def cluster():
    started_here = not _running()
    proc = subprocess.run(["bash", str(UP)], capture_output=True, text=True, timeout=900)
    if proc.returncode:
        pytest.fail(f".ci/slurm_up.sh failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    yield proc.stdout + proc.stderr
    if started_here:
        subprocess.run(["bash", str(DOWN)], capture_output=True, text=True, timeout=300)


def _workdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.yaml").write_text(yaml.safe_dump(CFG))
    return path


def _snakemake(wd: Path, *args, timeout=600):
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(wd),
           "--configfile", str(wd / "config.yaml"), *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def _sacct(job_ids: list[str]) -> dict[str, dict]:
    fields = "JobID,JobName,Partition,State,AllocTRES,ExitCode"
    rows = {}
    for _ in range(30):  # the accounting record lags a little behind the job
        proc = subprocess.run(["sacct", "-X", "-n", "-P", "-j", ",".join(job_ids), "-o", fields],
                              capture_output=True, text=True)
        rows = {}
        for line in proc.stdout.splitlines():
            jid, name, part, state, tres, code = line.split("|")
            rows[jid] = {"name": name, "partition": part, "state": state, "tres": tres, "exit": code}
        if set(rows) >= set(job_ids) and all(r["state"] == "COMPLETED" for r in rows.values()):
            break
        time.sleep(1)
    return rows


def test_level1_through_slurm_equals_a_local_run(cluster, tmp_path):
    slurm_wd = _workdir(tmp_path / "slurm")
    local_wd = _workdir(tmp_path / "local")
    t0 = time.time()
    # typed from the repository root, as a user would: `--profile slurm` resolves ./slurm
    proc = _snakemake(slurm_wd, "--profile", "slurm", "level1",
                      "--slurm-init-seconds-before-status-checks", "2",
                      "--slurm-keep-successful-logs")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"snakemake --profile slurm failed:\n{out[-6000:]}"
    wall = time.time() - t0
    assert "Using profiles slurm" in out

    # every job was submitted with sbatch and is known to SLURM's accounting
    submitted = dict(re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", out))
    job_ids = sorted(set(submitted.values()))
    assert len(job_ids) == 2, out[-3000:]  # tokenize_reference + level1_contig (chrI)
    rows = _sacct(job_ids)
    assert set(rows) == set(job_ids), rows
    assert all(r["state"] == "COMPLETED" and r["exit"] == "0:0" for r in rows.values()), rows
    logs = {jid: next((slurm_wd / ".snakemake" / "slurm_logs").rglob(f"{jid}.log")) for jid in job_ids}
    by_rule = {}
    for jid, log in logs.items():
        rule = log.relative_to(slurm_wd / ".snakemake" / "slurm_logs").parts[0].removeprefix("rule_")
        by_rule[rule] = jid
    assert set(by_rule) == {"tokenize_reference", "level1_contig"}, by_rule
    cpu, gpu = rows[by_rule["tokenize_reference"]], rows[by_rule["level1_contig"]]
    assert cpu["partition"] == "cpu" and "gres/gpu" not in cpu["tres"], cpu
    assert gpu["partition"] == "gpu" and "gres/gpu=1" in gpu["tres"], gpu
    # memory requested by the profile (attempt 1), not the rule's hint
    assert "mem=16000M" in gpu["tres"] and "mem=4000M" in cpu["tres"], rows

    # one Triton cache per user on node-local scratch, shared by the node's jobs and kept after them
    # (profiles/slurm/job_env.sh, via precommand)
    caches = set()
    for jid, log in logs.items():
        text = log.read_text()
        m = re.search(r"genoattn job env: .* TRITON_CACHE_DIR=(\S+)", text)
        assert m, f"job {jid}: no job env line in {log}"
        caches.add(m.group(1))
    assert len(caches) == 1 and os.path.isdir(caches.pop()), "the jobs did not share a kept node-local cache"

    # the same target run locally gives the same stores
    local = _snakemake(local_wd, "--cores", "2", "level1")
    assert local.returncode == 0, local.stderr[-4000:]
    for store in ("tokens.zarr", "level1/chrI.zarr"):
        a = store_arrays(slurm_wd / "results/yeast" / store)
        b = store_arrays(local_wd / "results/yeast" / store)
        assert a.keys() == b.keys() and a
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=f"{store}:{name}")
    print(f"SLURM run of `level1` on chrI: {wall:.1f} s wall, jobs {by_rule}")


def test_gres_variant_of_the_profile(cluster, tmp_path):
    """A site whose GPUs are generic resources only copies the profile and writes `gres:` for `gpu: 1`
    (profiles/slurm/config.yaml says how): the GPU rule gets its GPU through sbatch --gres."""
    site = tmp_path / "site_profile"
    shutil.copytree(ROOT / "profiles" / "slurm", site)
    cfg = yaml.safe_load((site / "config.yaml").read_text())
    gpu_rules = [r for r, res in cfg["set-resources"].items() if res.get("gpu")]
    assert "level1_contig" in gpu_rules
    for rule in gpu_rules:
        del cfg["set-resources"][rule]["gpu"]
        cfg["set-resources"][rule]["gres"] = "gpu:fake:1"
    (site / "config.yaml").write_text(yaml.safe_dump(cfg))
    wd = _workdir(tmp_path / "wd")
    proc = _snakemake(wd, "--profile", str(site), "level1", "--slurm-init-seconds-before-status-checks", "2",
                      "--slurm-keep-successful-logs")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"snakemake with the gres profile failed:\n{out[-6000:]}"
    job_ids = sorted(set(dict(re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", out)).values()))
    rows = _sacct(job_ids)
    gpu_jobs = [r for r in rows.values() if r["partition"] == "gpu"]
    assert len(gpu_jobs) == 1 and gpu_jobs[0]["name"] and gpu_jobs[0]["state"] == "COMPLETED", rows
    assert "gres/gpu=1" in gpu_jobs[0]["tres"], gpu_jobs[0]
    assert (wd / "results/yeast/level1/chrI.zarr").is_dir()
