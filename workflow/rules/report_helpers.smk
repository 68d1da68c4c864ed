# Helpers of report.smk, kept in their own file (snakemake --lint wants functions apart).
import os

# level -> (TARGETS key, inputs of the plot: results-relative patterns)
PLOTS = {
    "level1": ("level1", ["level1/{contig}.zarr"]),
    "level2": ("level2", ["level2/{contig}.zarr"]),
    "level3": ("level3", ["level3/{contig}.zarr"]),
    "hic": ("hic", ["hic/{contig}.zarr"]),
    "level4": ("level4", ["level4/{contig}.zarr"]),
    "level5": ("level5", ["level5.zarr"]),
    "level6": ("level6", ["level6.zarr"]),
    "effects": ("effects", ["effects/variants.parquet"]),
    # held-out Hi-C contacts of the level-4 checkpoint (heldout_pairs.parquet beside it)
    "contacts": ("level4", []),
    "training": (
        "training",
        [],
    ),  # the model.json beside each trained level's checkpoint
}
TRAINED_LEVELS = ("level1", "level2", "level3", "level4", "level5", "level6")


def training_metrics(owner):
    """model.json of each level's checkpoint for ``owner``: the training output's, or one shipped beside a
    checkpoint file (data/demo/checkpoints/)."""
    out = []
    for level in TRAINED_LEVELS:
        if not _runs(
            level, owner
        ):  # a cohort has no level 1, a reference without annotation no level 2
            continue
        path = L.checkpoint(level, owner)
        if path:
            metrics = os.path.join(os.path.dirname(path), "model.json")
            if L.level(level)["checkpoint"] == "train" or os.path.exists(metrics):
                out.append(metrics)
    return out


def contact_pairs(owner):
    """heldout_pairs.parquet beside the level-4 checkpoint of ``owner`` (train_level4 writes it), if any."""
    path = L.checkpoint("level4", owner) if _runs("level4", owner) else None
    if not path:
        return []
    pairs = os.path.join(os.path.dirname(path), "heldout_pairs.parquet")
    return (
        [pairs]
        if L.level("level4")["checkpoint"] == "train" or os.path.exists(pairs)
        else []
    )


def _runs(level, owner):
    """Whether this config builds ``level`` for ``owner`` (a target under results/{owner}/)."""
    prefix = L.path(owner) + os.sep
    return any(str(p).startswith(prefix) for p in TARGETS.get(PLOTS[level][0], []))


def plot_owners(level):
    """References (or cohorts) whose results/{name}/ holds a target of ``level`` in this config."""
    if level == "training":
        return [o for o in L.references + L.cohorts if training_metrics(o)]
    if level == "contacts":
        return [o for o in L.references if contact_pairs(o)]
    return [n for n in L.references + L.cohorts if _runs(level, n)]


def plot_inputs(level):
    def inputs(wildcards):
        if level == "training":
            return training_metrics(wildcards.owner)
        if level == "contacts":
            return contact_pairs(wildcards.owner)
        out = []
        for pattern in PLOTS[level][1]:
            if "{contig}" in pattern:
                out += L.per_contig(wildcards.owner, pattern)
            else:
                out.append(L.path(wildcards.owner, pattern))
        return out

    return inputs


def plot_params(level):
    """What the plot scripts need besides the stores: the raw Hi-C file, whether the level is trained."""

    def params(wildcards):
        hic = L.ref(wildcards.owner)["hic"] if wildcards.owner in L.references else None
        weights = (
            L.weights_label(level, wildcards.owner) if level in TRAINED_LEVELS else ""
        )
        return {"hic": hic, "owner": wildcards.owner, "weights": weights}

    return params
