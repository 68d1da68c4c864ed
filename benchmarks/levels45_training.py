"""Levels 4-5 on held-out Hi-C contacts: train both (the workflow's own jobs) and tabulate them with the
baselines their jobs measured on the same pairs, with bootstrap intervals for level 4.

    python benchmarks/levels45_training.py --config config/config.yaml --reference yeast_R64 \
        --steps4 1500 --steps5 600 --eval-every 100 --out4 data/demo/checkpoints/level4 --out5 data/demo/checkpoints/level5 \
        [--threads 2] [--json benchmarks/results/levels45_training.json]

Runs ``genoattn train level4`` (genoattn.training.held_out_contacts: graph attention and, in the same job,
the sequence-only baseline; the distance and neighbour baselines scored on the same held-out pairs), then
``genoattn train level5`` on a copy of the config whose ``levels.level4.checkpoint`` is the level-4 model
just trained (genoattn.training.trans_contacts: genome attention and, in the same job, the position-only
baseline). ``--skip-training`` only tabulates existing outputs. Level 4's 95 % intervals: 1,000 bootstrap
resamples of the held-out test pairs (matched positive/negative pairs resampled together for the AUROC).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

LEVEL4_MODELS = {"graph attention (level 4)": "predicted_log_oe", "sequence only (same head, no graph)":
                 "sequence_only_log_oe", "neighbouring pixels (visible)": "neighbours_log_oe",
                 "distance decay (visible expected)": "visible_expected"}
LEVEL4_TOP = {"predicted_log_oe": "predicted_top_logit", "sequence_only_log_oe": "sequence_only_top_logit"}


def level4_table(pairs_path: Path, split: str, n_boot: int, seed: int = 0) -> dict:
    """Metrics of every model column of heldout_pairs.parquet on ``split``, with bootstrap intervals."""
    import pandas as pd

    from genoattn.training.held_out_contacts import auroc, stratum_adjusted_spearman

    t = pd.read_parquet(pairs_path)
    t = t[t["split"] == split].reset_index(drop=True)
    auc_set = t["is_top"].to_numpy() | ~t["held_out_edge"].to_numpy()
    rng = np.random.default_rng(seed)
    out = {"pairs": int(len(t)), "top_edges": int((t["is_top"] & t["held_out_edge"]).sum()),
           "negatives": int((~t["held_out_edge"]).sum()), "contigs": sorted(set(t["contig"])), "models": {}}
    obs, dist, top = t["observed_log_oe"].to_numpy(), t["distance_bins"].to_numpy(), t["is_top"].to_numpy()
    idx_auc = np.flatnonzero(auc_set)
    for name, col in LEVEL4_MODELS.items():
        pred = t[col].to_numpy()
        score = t[LEVEL4_TOP[col]].to_numpy() if col in LEVEL4_TOP else pred
        rho = stratum_adjusted_spearman(pred, obs, dist)[0]
        auc = auroc(score[idx_auc], top[idx_auc])
        boots_rho, boots_auc = [], []
        for _ in range(n_boot):
            k = rng.integers(0, len(t), len(t))
            boots_rho.append(stratum_adjusted_spearman(pred[k], obs[k], dist[k])[0])
            ka = rng.choice(idx_auc, len(idx_auc))
            boots_auc.append(auroc(score[ka], top[ka]))
        out["models"][name] = {"spearman": round(float(rho), 4), "auroc_top": round(float(auc), 4),
                               "spearman_95ci": [round(float(x), 4) for x in np.nanpercentile(boots_rho, [2.5, 97.5])],
                               "auroc_top_95ci": [round(float(x), 4) for x in np.nanpercentile(boots_auc, [2.5, 97.5])]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--reference", required=True)
    ap.add_argument("--steps4", type=int, required=True)
    ap.add_argument("--steps5", type=int, required=True)
    ap.add_argument("--out4", required=True)
    ap.add_argument("--out5", required=True)
    ap.add_argument("--eval-every", type=int, help="replace training.level4/level5.eval_every (weights chosen there)")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--skip-training", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args()
    from genoattn.cli_jobs import train_level
    from genoattn.runtime import setup_logging

    setup_logging(None)
    seconds = {}
    extra = {"eval_every": args.eval_every} if args.eval_every else {}
    if not args.skip_training:
        t0 = time.time()
        train_level("level4", args.config, reference=args.reference, out=args.out4, threads=args.threads,
                    overrides={"steps": args.steps4, **extra})
        seconds["level4"] = round(time.time() - t0, 1)
        cfg = yaml.safe_load(Path(args.config).read_text())
        levels = cfg.setdefault("levels", {}) or {}
        levels["level4"] = {**(levels.get("level4") or {}), "checkpoint": str(Path(args.out4) / "model.safetensors")}
        cfg["levels"] = levels
        with tempfile.NamedTemporaryFile("w", prefix=".levels45-", suffix=".yaml", dir=Path(args.config).parent,
                                         delete=False) as fh:
            yaml.safe_dump(cfg, fh)
        try:
            t0 = time.time()
            train_level("level5", fh.name, reference=args.reference, out=args.out5, threads=args.threads,
                        overrides={"steps": args.steps5, **extra})
            seconds["level5"] = round(time.time() - t0, 1)
        finally:
            Path(fh.name).unlink()
    m4 = json.loads((Path(args.out4) / "model.json").read_text())
    m5 = json.loads((Path(args.out5) / "model.json").read_text())
    result = {"command": "python benchmarks/levels45_training.py " + " ".join(
                  f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
                  if v not in (None, False) and k not in ("bootstrap",)),
              "seconds": seconds,
              "level4": {"steps": m4["steps"], "train_seconds": m4["seconds"], "protocol": m4["heldout_protocol"],
                         "selected_on_validation": {
                             "graph attention": m4.get("selected_on_validation"),
                             "sequence only": json.loads((Path(args.out4) / "sequence_only/model.json").read_text())
                             .get("selected_on_validation")},
                         "pairs": m4["pairs"], "split": m4["split"],
                         **{s: level4_table(Path(args.out4) / "heldout_pairs.parquet", s, args.bootstrap)
                            for s in ("validation", "test")}},
              "level5": {"steps": m5["steps"], "train_seconds": m5["seconds"], "protocol": m5["heldout_protocol"],
                         "selected_on_validation": {
                             "genome attention": m5.get("selected_on_validation"),
                             "position only": json.loads((Path(args.out5) / "position_only/model.json").read_text())
                             .get("selected_on_validation")},
                         "pairs": m5["pairs"], "layout_trans_block_pairs": m5["layout"]["trans_block_pairs"],
                         **{s: {"genome attention (level 5)": m5["metrics"][s],
                                "position only (centromere/telomere distances)": m5["baselines"][s]["position"]}
                            for s in ("validation", "test") if s in m5["metrics"]}}}
    print(json.dumps(result, indent=1))
    print("\n| level | model | test Spearman | test AUROC (top) |\n|---|---|---|---|")
    for name, m in result["level4"]["test"]["models"].items():
        print(f"| 4 | {name} | {m['spearman']:.3f} [{m['spearman_95ci'][0]:.3f}, {m['spearman_95ci'][1]:.3f}] | "
              f"{m['auroc_top']:.3f} [{m['auroc_top_95ci'][0]:.3f}, {m['auroc_top_95ci'][1]:.3f}] |")
    for name, m in result["level5"].get("test", {}).items():
        print(f"| 5 | {name} | {m['spearman']:.3f} | {m['auroc_top']:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
