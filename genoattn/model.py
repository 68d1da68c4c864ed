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


def pick_device(setting: str = "auto") -> torch.device:
    if setting == "cuda" or (setting == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("kernels.device is 'cuda' but torch sees no GPU (CUDA_VISIBLE_DEVICES, driver?)")
        return torch.device("cuda")
    return torch.device("cpu")
