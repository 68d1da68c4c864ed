"""The training loop every objective shares: schedule, resume, DDP, progress, checkpoint + metrics.

An objective (one module per objective: :mod:`~genoattn.training.masked_bases`, ...) provides an
:class:`Objective`: the level's module, a prediction head (a training device, not saved), training
batches drawn from the training chromosomes, a loss, and held-out metrics. :func:`train` does the rest:

* AdamW, linear warmup then cosine decay to 10 % of ``lr``, gradient clipping at 1.0;
* batches are a pure function of (seed, rank, step): a resumed run draws exactly the batches the
  uninterrupted run would have drawn, with no random-generator state to save;
* every ``checkpoint_every`` steps the training state (module, head, optimizer, schedule, step, log)
  is written atomically to ``state.pt`` beside the outputs; a rerun with the same configuration
  continues from it (a job killed by SIGKILL or the wall time loses at most ``checkpoint_every``
  steps); a state made with another configuration is ignored (and said so). ``steps`` is not part of
  that configuration: a rerun with another ``steps`` continues the state on a schedule of the new
  length (to extend a run, or to end it sooner with the learning rate annealed);
* with ``WORLD_SIZE`` > 1 (``torchrun``), DistributedDataParallel (NCCL on GPUs, gloo on CPUs); rank 0
  evaluates, writes the state and the outputs;
* progress lines in the job log: step, loss, learning rate, tokens/s, ETA; the same rows in ``log.tsv``;
* an objective with ``select_on = (metric, higher_is_better)`` is scored on the whole validation split
  every ``eval_every`` steps and ends with the weights of its best score (model selection on validation;
  ``selected_on_validation`` in model.json says which step; the test split is never looked at before);
* at the end: held-out metrics (validation and test chromosomes), ``model.safetensors`` (the level's
  module only; ``levels.<level>.checkpoint`` loads it), ``head.safetensors`` (the objective's prediction
  head, for scoring it again: benchmarks) and ``model.json`` (config, split, steps,
  metrics, throughput, the sha256 of the inputs); ``state.pt`` is then removed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

log = logging.getLogger("genoattn.training")


class Objective(Protocol):
    level: str
    name: str
    module: torch.nn.Module          # the level's module (saved)
    head: torch.nn.Module            # prediction head (training only)

    def batch(self, rng: np.random.Generator, size: int) -> dict: ...
    def loss(self, module, head, batch: dict, checkpoint_blocks: bool) -> tuple[torch.Tensor, dict]: ...
    def evaluate(self, module, head, split: str, quick: bool) -> dict: ...
    def describe(self) -> dict: ...


@dataclass
class LoopOptions:
    steps: int
    batch: int
    lr: float
    warmup: int
    weight_decay: float
    eval_every: int
    checkpoint_every: int
    log_every: int
    seed: int
    gradient_checkpointing: bool


def loop_options(cfg: dict) -> LoopOptions:
    """From a validated ``training.<level>`` section."""
    return LoopOptions(**{k: cfg[k] for k in LoopOptions.__dataclass_fields__})


def fingerprint(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def prediction_head(dim: int, classes: int, seed: int) -> torch.nn.Module:
    """An objective's head (LayerNorm + Linear to ``classes``), its initial weights following ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torch.nn.Sequential(torch.nn.LayerNorm(dim), torch.nn.Linear(dim, classes))


def lr_factor(step: int, warmup: int, steps: int) -> float:
    if step < warmup:
        return (step + 1) / max(warmup, 1)
    progress = (step - warmup) / max(steps - warmup, 1)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


# -- distributed ---------------------------------------------------------------------------------------------
def dist_info() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) otherwise."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def init_distributed(device: torch.device) -> None:
    import torch.distributed as dist

    if dist_info()[1] > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


# -- state ---------------------------------------------------------------------------------------------------
def _schedule_free(opts: LoopOptions) -> dict:
    """The options a state must share to be resumed: all but the schedule length."""
    return {k: v for k, v in opts.__dict__.items() if k != "steps"}


def _save_atomic(obj, path: Path) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _load_state(path: Path, fp: str):
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a state file cut short by a kill during an old-style write
        log.warning("%s cannot be read (%s); training starts from step 0", path, exc)
        return None
    if state.get("fingerprint") != fp:
        log.warning("%s was written with another configuration (or other inputs); training starts from step 0",
                    path)
        return None
    return state


# -- the loop ------------------------------------------------------------------------------------------------
def train(objective: Objective, opts: LoopOptions, out_dir: str | os.PathLike, device: torch.device,
          identity: dict, backend: str | None = None) -> dict:
    """Train ``objective`` and write model.safetensors + model.json into ``out_dir``; return model.json."""
    from genoattn.model import save_checkpoint

    rank, world, _ = dist_info()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / "state.pt"
    fp = fingerprint({"identity": identity, "options": _schedule_free(opts), "world": world})
    module, head = objective.module.to(device), objective.head.to(device)
    params = list(module.parameters()) + list(head.parameters())
    optim = torch.optim.AdamW(params, lr=opts.lr, weight_decay=opts.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(optim, lambda s: lr_factor(s, opts.warmup, opts.steps))
    start, rows, elapsed, evals = 0, [], 0.0, []
    select = getattr(objective, "select_on", None)  # (validation metric, higher is better) or None
    best = None  # {"step", "value", "module", "head"}: the validation-selected weights so far
    state = _load_state(state_path, fp)
    if state is not None:
        module.load_state_dict(state["module"])
        head.load_state_dict(state["head"])
        optim.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start, rows, elapsed, evals = state["step"], state["rows"], state["elapsed"], state["evals"]
        best = state.get("best")
        log.info("resumed from %s at step %d of %d", state_path, start, opts.steps)
        if state.get("steps", opts.steps) != opts.steps:
            log.warning("the state was written on a %d-step schedule; it continues on a %d-step schedule",
                        state["steps"], opts.steps)
    before = objective.evaluate(module, head, "validation", quick=True) if start == 0 and rank == 0 else None
    train_module, train_head = module, head
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [device.index] if device.type == "cuda" else None
        train_module, train_head = DDP(module, device_ids=ids), DDP(head, device_ids=ids)
    module.train()
    head.train()
    t0, window_t, window_tokens, recent = time.time(), time.time(), 0, []
    for step in range(start, opts.steps):
        batch = objective.batch(np.random.default_rng([opts.seed, rank, step]), opts.batch)
        loss, info = objective.loss(train_module, train_head, batch, opts.gradient_checkpointing)
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"{objective.level} training: loss is {loss.item()} at step {step + 1}; "
                                     f"lower training.{objective.level}.lr")
        optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optim.step()
        sched.step()
        recent.append((loss.item(), info["accuracy"]))
        window_tokens += info["tokens"] * world
        done = step + 1
        if done % opts.log_every == 0 or done == opts.steps:
            now = time.time()
            rate = window_tokens / max(now - window_t, 1e-9)
            seconds = elapsed + now - t0
            eta = (now - t0) / max(done - start, 1) * (opts.steps - done)
            ls, ac = np.mean(recent, axis=0)
            rows.append({"step": done, "loss": round(float(ls), 5), "accuracy": round(float(ac), 4),
                         "lr": float(sched.get_last_lr()[0]), "tokens_per_s": round(rate, 1),
                         "seconds": round(seconds, 1)})
            if rank == 0:
                log.info("%s step %d/%d: loss %.4f, accuracy %.3f, lr %.2e, %.0f tokens/s, ETA %s",
                         objective.name, done, opts.steps, ls, ac, sched.get_last_lr()[0], rate, _hms(eta))
            recent, window_t, window_tokens = [], now, 0
        if opts.eval_every and done % opts.eval_every == 0 and rank == 0 and (done < opts.steps or select):
            metrics = objective.evaluate(module, head, "validation", quick=not select)
            evals.append({"step": done, **metrics})
            log.info("%s step %d: validation %s", objective.name, done, _fmt(metrics))
            if select and math.isfinite(metrics.get(select[0], math.nan)):
                value = metrics[select[0]] * (1 if select[1] else -1)
                if best is None or value > best["value"]:
                    best = {"step": done, "value": value, "module": _cpu_copy(module.state_dict()),
                            "head": _cpu_copy(head.state_dict())}
            module.train()
            head.train()
        if opts.checkpoint_every and done % opts.checkpoint_every == 0 and done < opts.steps:
            if rank == 0:
                _save_atomic({"fingerprint": fp, "step": done, "steps": opts.steps,
                              "module": module.state_dict(), "head": head.state_dict(), "optimizer": optim.state_dict(),
                              "scheduler": sched.state_dict(), "rows": rows, "evals": evals, "best": best,
                              "elapsed": elapsed + time.time() - t0}, state_path)
            _barrier()
    seconds = elapsed + time.time() - t0
    result = {}
    if rank == 0:
        selected = None
        if best is not None:  # the weights of the best validation score (model selection; test untouched)
            module.load_state_dict(best["module"])
            head.load_state_dict(best["head"])
            selected = {"metric": select[0], "step": best["step"],
                        "value": best["value"] * (1 if select[1] else -1)}
            log.info("%s: weights of step %d selected on validation %s", objective.name, best["step"], select[0])
        module.eval()
        head.eval()
        metrics = {"validation": objective.evaluate(module, head, "validation", quick=False),
                   "test": objective.evaluate(module, head, "test", quick=False)}
        if before is not None:
            metrics["validation_before_training"] = before
        log.info("%s: held-out %s", objective.name, json.dumps(metrics))
        result = {"level": objective.level, "objective": objective.name, "steps": opts.steps,
                  "seconds": round(seconds, 1), "processes": world, "options": opts.__dict__,
                  "metrics": metrics, "validation_during_training": evals, "log": rows,
                  "selected_on_validation": selected,
                  "tokens_per_s": _median([r["tokens_per_s"] for r in rows[1:]] or
                                          [r["tokens_per_s"] for r in rows]),
                  **objective.describe(), "identity": identity}
        _write_outputs(module, head, out, objective.level, result, save_checkpoint)
        state_path.unlink(missing_ok=True)
    _barrier()
    return result


def _write_outputs(module, head, out: Path, level: str, result: dict, save_checkpoint) -> None:
    (out / "log.tsv").write_text("step\tloss\taccuracy\tlr\ttokens_per_s\tseconds\n" + "".join(
        f"{r['step']}\t{r['loss']}\t{r['accuracy']}\t{r['lr']:.4g}\t{r['tokens_per_s']}\t{r['seconds']}\n"
        for r in result["log"]))
    tmp = out / f"model.safetensors.tmp-{os.getpid()}"
    save_checkpoint(module, tmp, level, {"trained": "true", "objective": result["objective"],
                                         "steps": str(result["steps"]),
                                         "metrics": json.dumps(result["metrics"])})
    os.replace(tmp, out / "model.safetensors")
    # the prediction head, for scoring the objective again later (benchmarks); levels never load it
    from safetensors.torch import save_file

    tmp = out / f"head.safetensors.tmp-{os.getpid()}"
    save_file({k: v.detach().contiguous().cpu() for k, v in head.state_dict().items()}, str(tmp),
              metadata={"genoattn_level": level, "objective": result["objective"], "role": "prediction head"})
    os.replace(tmp, out / "head.safetensors")
    tmp = out / f"model.json.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(result, indent=1, default=str) + "\n")
    os.replace(tmp, out / "model.json")


def _cpu_copy(state: dict) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


def _median(x):
    return float(np.median(x)) if len(x) else 0.0


def _hms(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _fmt(metrics: dict) -> str:
    return ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())


def train_or_reuse(objective: Objective, opts: LoopOptions, out_dir: str | os.PathLike, device: torch.device,
                   identity: dict, backend: str | None = None) -> dict:
    """:func:`train`, unless ``out_dir`` already holds the finished outputs of this very training (same
    identity and steps; e.g. a baseline trained before the job was killed): then its weights are loaded
    into the objective's module and head and its model.json is returned."""
    from safetensors.torch import load_file

    out = Path(out_dir)
    try:
        done = json.loads((out / "model.json").read_text())
    except (OSError, ValueError):
        done = None
    if (done is not None and done.get("steps") == opts.steps and dist_info()[1] == 1
            and done.get("identity") == json.loads(json.dumps(identity, default=str))
            and (out / "model.safetensors").exists() and (out / "head.safetensors").exists()):
        objective.module.load_state_dict(load_file(str(out / "model.safetensors")))
        objective.head.load_state_dict(load_file(str(out / "head.safetensors")))
        objective.module.to(device).eval()
        objective.head.to(device).eval()
        log.info("%s: %s holds this training's finished outputs; reused", objective.name, out)
        return done
    return train(objective, opts, out_dir, device, identity, backend)
