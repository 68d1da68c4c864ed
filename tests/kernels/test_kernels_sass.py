"""The instruction budget of the compiled level-1 attention kernels (sm_90 SASS, no GPU needed).

At head dim 16 one MUFU.EX2 per score bounds attention; it costs a warp 8 issue slots, so a kernel
whose main loop issues more than about 8 warp instructions per 32 scores is bound by its own
instruction count instead, however fast the GPU. These are invariants of the compiled code, not
timings: exactly one exponential per score, tensor cores for the dots in bf16, no register spills,
and an issue count within 1.35x of the exponential floor for the autotune candidates' best.
Runs ``benchmarks/sass_budget.py`` in a fresh process (the kernels must be compiled, not interpreted).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def budget(tmp_path_factory):
    pytest.importorskip("triton")
    out = tmp_path_factory.mktemp("sass") / "budget.json"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "sass_budget.py"), "--quick",
                           "--cases", "level 1 dense, key padding", "--out", str(out)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())["rows"]


def _rows(budget, kernel):
    rows = [r for r in budget if r["kernel"] == kernel]
    assert rows, f"{kernel} was not launched"
    return rows


@pytest.mark.parametrize("kernel", ["_fwd_kernel", "_bwd_dkdv_kernel", "_bwd_dq_kernel"])
def test_one_exponential_per_score_on_tensor_cores(budget, kernel):
    for r in _rows(budget, kernel):
        # the forward adds the per-row rescale exp2(m_old - m_new): 1/16 more on a 64-wide block pair
        assert 1.0 <= r["ex2_per_item"] <= 1.07, r
        assert any(op.startswith(("HGMMA", "HMMA")) for op in r["opcodes"]), f"{kernel}: dots not on tensor cores"
        assert r["local_memory_ops"] == 0, f"{kernel}: register spills in the main loop"


@pytest.mark.parametrize("kernel", ["_fwd_kernel", "_bwd_dkdv_kernel", "_bwd_dq_kernel"])
def test_issue_count_near_exponential_floor(budget, kernel):
    best = min(r["vs_exp_floor"] for r in _rows(budget, kernel))
    assert best <= 1.35, f"{kernel}: main loop bound at {best}x the exponential floor"
