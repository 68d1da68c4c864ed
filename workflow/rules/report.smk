# Report: one figure per finished level, for the levels this config runs (`snakemake --report
# report.html` after a run). Include after every level's rule file (the Snakefile does): the
# plots are chosen from what the levels registered in TARGETS.


report: "../report/workflow.rst"


include: "report_helpers.smk"


for _level in PLOTS:

    rule:
        name:
            f"plot_{_level}"
        input:
            stores=plot_inputs(_level),
        output:
            report(
                L.path("{owner}", "plots", f"{_level}.png"),
                caption=f"../report/{_level}.rst",
                category="{owner}",
                subcategory=_level,
                labels={"level": _level, "results": "{owner}"},
            ),
        log:
            L.path("{owner}", "logs", "plots", f"{_level}.log"),
        benchmark:
            L.path("{owner}", "benchmarks", "plots", f"{_level}.tsv")
        wildcard_constraints:
            owner=L.wildcard_pattern(L.references + L.cohorts),
        conda:
            ENV_CPU
        container:
            IMAGE_CPU
        threads: 1
        resources:
            # matrices are drawn at most 2,000 bins a side (plot_level.MAX_DRAWN_BINS): memory does not
            # grow with the contig; this grows with the attempt
            mem_mb=lambda wildcards, attempt: 4000 * attempt,
        params:
            level=_level,
            extra=plot_params(_level),
        script:
            "../scripts/plot_level.py"


TARGETS["report"] = [
    L.path(owner, "plots", f"{level}.png")
    for level in PLOTS
    for owner in plot_owners(level)
]


rule plots:
    input:
        TARGETS["report"],
