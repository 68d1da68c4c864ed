"""Weights of the level modules: seeded initialisation or a safetensors checkpoint.

Every store records which one produced it (``model`` root attribute), so an embedding made
with untrained weights is never mistaken for a trained one.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import torch

from genoattn.io.store import sha256_file


def build_module(factory: Callable[[], torch.nn.Module], level: str, checkpoint: str | None = None,
                 seed: int = 0) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Build a level's module and return it with its identity.

    The factory is called under ``torch.manual_seed(seed)`` so that the same seed gives the
    same weights on every machine (CPU generator, independent of the device used later).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = factory()
    if checkpoint:
        identity = load_checkpoint(module, checkpoint, level)
    else:
        identity = {"level": level, "weights": "seeded-init", "trained": False, "seed": int(seed)}
    identity["parameters"] = int(sum(p.numel() for p in module.parameters()))
    identity["module"] = type(module).__name__
    module.eval()
    return module, identity


def save_checkpoint(module: torch.nn.Module, path: str | os.PathLike, level: str,
                    metadata: dict[str, str] | None = None) -> None:
    from safetensors.torch import save_file

    meta = {"genoattn_level": level, "module": type(module).__name__}
    meta.update({k: str(v) for k, v in (metadata or {}).items()})
    save_file({k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}, str(path), metadata=meta)


def load_checkpoint(module: torch.nn.Module, path: str | os.PathLike, level: str) -> dict[str, Any]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata() or {}
        state = {k: fh.get_tensor(k) for k in fh.keys()}
    if meta.get("genoattn_level") not in (None, level):
        raise ValueError(f"checkpoint {path} is for {meta['genoattn_level']}, not {level}. "
                         f"Fix: point levels.{level}.checkpoint at a {level} checkpoint")
    fix = (f"Fix: set levels.{level} (dim, heads, layers, ...) to what the checkpoint was trained with (its "
           f"model.json, or the `training` metadata of the file), or train one for this config")
    try:
        missing, unexpected = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        first = str(exc).split("\n\t")[1] if "\n\t" in str(exc) else str(exc)[:300]
        raise ValueError(f"checkpoint {path} does not fit the {level} module built from levels.{level} (dim, "
                         f"heads, layers ...): {first.strip()}. {fix}") from None
    if missing or unexpected:
        raise ValueError(f"checkpoint {path} does not fit the {level} module built from levels.{level} (dim, heads, "
                         f"layers ...): missing {missing[:5]}, unexpected {unexpected[:5]}. {fix}")
    return {"level": level, "weights": "checkpoint", "trained": meta.get("trained", "true") == "true",
            "checkpoint": str(path), "checkpoint_sha256": sha256_file(path),
            "checkpoint_metadata": meta}


#: what SLURM sets in a job that was given GPUs (sbatch --gpus / --gres=gpu): lists of GPU indices, then counts
SLURM_GPU_INDEX_VARIABLES = ("SLURM_JOB_GPUS", "SLURM_STEP_GPUS")
SLURM_GPU_COUNT_VARIABLES = ("SLURM_GPUS_ON_NODE",)
SLURM_GPU_VARIABLES = SLURM_GPU_INDEX_VARIABLES + SLURM_GPU_COUNT_VARIABLES


def gpu_allocated() -> str | None:
    """``NAME=value`` of the SLURM variable saying this job holds GPUs, or None."""
    for name in SLURM_GPU_VARIABLES:
        value = os.environ.get(name, "").strip()
        if not value or value == "(null)" or (name in SLURM_GPU_COUNT_VARIABLES and value == "0"):
            continue
        return f"{name}={value}"
    return None


def _no_gpu_message(why: str) -> str:
    build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
    return (f"{why}, but torch ({torch.__version__}, {build}) sees no CUDA device "
            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}). Fix: run the container with "
            "--nv (snakemake --apptainer-args '--nv'), use the CUDA build of torch in the job's environment "
            "(envs/genoattn-gpu.yaml), check CUDA_VISIBLE_DEVICES; or set kernels.device: cpu to run on the CPU on "
            "purpose")


def pick_device(setting: str = "auto") -> torch.device:
    """``kernels.device``: cuda, cpu, or auto (cuda when torch sees one). A job that SLURM gave a GPU but that
    sees none (apptainer without --nv, a CPU-only torch, a wrong CUDA_VISIBLE_DEVICES) stops instead of
    running on the CPU for hours; ``cpu`` runs on the CPU on purpose."""
    if setting == "cuda" or (setting == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError(_no_gpu_message("kernels.device is 'cuda'"))
        return torch.device("cuda")
    if setting == "auto" and gpu_allocated():
        raise RuntimeError(_no_gpu_message(f"this job was given a GPU by SLURM ({gpu_allocated()})"))
    return torch.device("cpu")
