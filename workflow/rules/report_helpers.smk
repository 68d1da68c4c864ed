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
}


def plot_owners(level):
    """References (or cohorts) whose results/{name}/ holds a target of ``level`` in this config."""
    key = PLOTS[level][0]
    names = L.references + L.cohorts
    paths = [str(p) for p in TARGETS.get(key, [])]
    return [n for n in names if any(p.startswith(L.path(n) + os.sep) for p in paths)]


def plot_inputs(level):
    def inputs(wildcards):
        out = []
        for pattern in PLOTS[level][1]:
            if "{contig}" in pattern:
                out += L.per_contig(wildcards.owner, pattern)
            else:
                out.append(L.path(wildcards.owner, pattern))
        return out

    return inputs


def plot_params(wildcards):
    """What the plot scripts need besides the stores: the raw Hi-C file and the level config."""
    if wildcards.owner in L.references:
        return {"hic": L.ref(wildcards.owner).get("hic"), "owner": wildcards.owner}
    return {"hic": None, "owner": wildcards.owner}
