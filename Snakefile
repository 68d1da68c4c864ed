# genoattn workflow: hierarchical attention over a genome at six scales.
# This file only includes rule files; see README.md and config/README.md.

include: "workflow/rules/common.smk"
include: "workflow/rules/tokenize.smk"
include: "workflow/rules/annotation.smk"
include: "workflow/rules/level1.smk"
include: "workflow/rules/level2.smk"
include: "workflow/rules/level3.smk"
include: "workflow/rules/hic.smk"
include: "workflow/rules/level4.smk"
include: "workflow/rules/level5.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/genotypes.smk"
include: "workflow/rules/level6.smk"
include: "workflow/rules/targets.smk"
