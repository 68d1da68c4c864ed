# Input, param and resource functions of the rule files (snakemake --lint wants them apart from
# the rules). Called while the DAG is built, after every rule file has registered its TARGETS.

import os

from genoattn.levels.cohort import shard_count


# annotation.smk
def annotation_mem_mb(wildcards, attempt):
    # parsing holds ~1 KB per row: ~60x a gzip file's size, ~3x a plain one's (GENCODE human: ~3 GB)
    path = L.ref(wildcards.reference)["annotation"]
    size_mb = os.path.getsize(path) / 1e6 if os.path.exists(path) else 100
    factor = 60 if str(path).endswith((".gz", ".bgz")) else 3
    return int(attempt * max(1000, 500 + factor * size_mb))


# annotation.smk
def annotation_fasta_index(wildcards):
    fasta = L.ref(wildcards.reference)["fasta"]
    return [p for p in (f"{fasta}.fai", f"{fasta}.gzi") if os.path.exists(p)]


# level1.smk
def level1_annotation(wildcards):
    if L.ref(wildcards.reference).get("annotation"):
        return L.path(wildcards.reference, "annotation.parquet")
    return []


# level2.smk
def annotated_references():
    return [r for r in L.references if L.ref(r).get("annotation")]


# hic.smk
def hic_inputs(wildcards):
    ref = L.ref(wildcards.reference)
    out = {"hic": ref["hic"], "fasta": ref["fasta"]}
    if ref.get("hic_breakpoints"):
        out["breakpoints"] = ref["hic_breakpoints"]
    return out


# hic.smk
def hic_ref_params(wildcards):
    """The reference keys that shape the graph (a change reruns the rules)."""
    ref = L.ref(wildcards.reference)
    keys = (
        "fasta",
        "hic",
        "hic_resolution",
        "hic_balance",
        "hic_breakpoints",
        "contig_aliases",
        "chr_prefix",
    )
    return {k: ref.get(k) for k in keys}


# level4.smk
def level4_level3(wildcards):
    """The level-3 store of the contig when gene context is used (levels.level4.gene_context)."""
    setting = L.level("level4")["gene_context"]
    if setting is False:
        return []
    wanted = setting is True or (
        "level3" in TARGETS and L.ref(wildcards.reference).get("annotation")
    )
    if wanted:
        return L.path(wildcards.reference, "level3", f"{wildcards.contig}.zarr")
    return []


# genotypes.smk
def genotypes_inputs(wildcards):
    from genoattn.io.vcf import index_path

    vcf = config["cohorts"][wildcards.cohort]["vcf"]
    out = {"vcf": vcf}
    idx = index_path(vcf)
    if idx:  # a missing index fails inside the job with the command that makes it
        out["index"] = idx
    if config.get("samples"):
        out["samples"] = config["samples"]
    return out


# genotypes.smk
def genotypes_cohort_inputs(wildcards):
    out = genotypes_inputs(wildcards)
    parts = L.genotype_part_paths(wildcards.cohort)  # cohorts.<name>.split_bp
    if parts:
        out["parts"] = parts
    return out


# genotypes.smk
def genotype_part_region(wildcards):
    parts = L.genotype_parts(wildcards.cohort)
    i = int(wildcards.part[1:])
    if i >= len(parts):
        raise ValueError(
            f"cohort {wildcards.cohort} has {len(parts)} genotype pieces, not piece {wildcards.part}"
        )
    return parts[i]


# level6.smk
def level6_context(wildcards):
    """results/{reference}/level5.zarr when the cohort names a reference that has (or will have) one."""
    ref = config["cohorts"][wildcards.cohort].get("reference")
    if not ref:
        return []
    path = L.path(ref, "level5.zarr")
    if path in TARGETS.get("level5", []) or os.path.exists(path):
        return path
    return []


# level6.smk
def level6_shards(wildcards):
    n = shard_count(config, wildcards.cohort)
    return [L.path(wildcards.cohort, "level6_shards", f"{k}.zarr") for k in range(n)]
