"""Pre-flight: every input checked against the reference before any compute, all problems at once."""

import shutil

import pytest
import yaml

from demo_paths import VCF_1KG, YEAST_COOL, YEAST_FASTA
from genoattn.checks import PreflightError, preflight
from genoattn.config import validate_config


def _config(tmp_path, **cohort):
    cfg = {"references": {"yeast": {"fasta": str(YEAST_FASTA), "hic": str(YEAST_COOL), "include": ["chrI", "chrII"]}},
           "cohorts": {"g1k": {"vcf": str(VCF_1KG), **cohort}}}
    return validate_config(cfg, base_dir=tmp_path)


def test_the_demo_inputs_pass(tmp_path):
    found = preflight(_config(tmp_path), quiet=True)
    assert all(f.ok for f in found)
    keys = {f.key for f in found}
    assert {"references.yeast.fasta", "references.yeast.hic", "cohorts.g1k.vcf"} <= keys


def test_all_failures_are_reported_together_with_their_fix(tmp_path):
    vcf = tmp_path / "noindex.vcf.gz"
    shutil.copy(VCF_1KG, vcf)  # no .csi beside it
    cfg = _config(tmp_path)
    cfg["cohorts"]["g1k"]["vcf"] = str(vcf)
    cfg["references"]["yeast"]["hic_balance"] = "KR"  # the demo cooler only has `weight`
    with pytest.raises(PreflightError) as err:
        preflight(cfg, quiet=True)
    msg = str(err.value)
    assert "cohorts.g1k.vcf" in msg and "bcftools index" in msg
    assert "references.yeast.hic" in msg and "'KR'" in msg and "cooler balance" in msg


def test_a_cohort_on_another_assembly_is_refused(tmp_path):
    # human chr20 genotypes against the yeast reference: no contig maps
    cfg = _config(tmp_path, reference="yeast")
    with pytest.raises(PreflightError) as err:
        preflight(cfg, quiet=True)
    assert "cohorts.g1k" in str(err.value) and "contig_aliases" in str(err.value)


def test_the_cli_prints_one_line_per_input(tmp_path, root):
    import subprocess
    import sys

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"references": {"yeast": {"fasta": str(YEAST_FASTA), "hic": str(YEAST_COOL),
                                                             "hic_resolution": 5000}}}))
    proc = subprocess.run([sys.executable, "-m", "genoattn.cli", "check", str(path)], capture_output=True,
                          text=True, cwd=root)
    assert proc.returncode == 1
    assert "ok    references.yeast.fasta" in proc.stdout
    assert "ERROR references.yeast.hic" in proc.stdout and "available resolutions: 10000" in proc.stdout


def test_a_job_given_a_gpu_that_torch_cannot_see_stops(monkeypatch):
    """SLURM gave the job a GPU (sbatch --gpus) but torch sees none (apptainer without --nv, a CPU-only torch):
    kernels.device auto stops with the fix instead of running on the CPU; cpu runs on the CPU on purpose."""
    import torch

    from genoattn.model import SLURM_GPU_VARIABLES, pick_device

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU torch can see")
    for name in SLURM_GPU_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert pick_device("auto").type == "cpu"
    monkeypatch.setenv("SLURM_GPUS_ON_NODE", "0")      # a count: no GPU
    assert pick_device("auto").type == "cpu"
    monkeypatch.setenv("SLURM_JOB_GPUS", "0")          # GPU index 0 (a real allocation)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(RuntimeError, match=r"SLURM_JOB_GPUS=0.*no CUDA device.*--nv.*kernels.device: cpu"):
        pick_device("auto")
    assert pick_device("cpu").type == "cpu"
    with pytest.raises(RuntimeError, match="kernels.device is 'cuda'"):
        pick_device("cuda")
