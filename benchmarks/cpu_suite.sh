#!/usr/bin/env bash
# The CPU benchmarks whose numbers RESULTS.md renders, with the commands it quotes, one after the other
# (run it on a machine doing nothing else: each JSON records the load it saw), then the tables and
# sentences of RESULTS.md and README.md regenerated from the JSON. About 30 minutes on 2 cores.
#
#     bash benchmarks/cpu_suite.sh            # from the repository root, in the project's virtualenv
#
# Not included (long, run on their own): the README demo (benchmarks/demo_time.py, ~1 h), the training
# benchmarks (level1/level2/levels45/level6 *_training.py), the human-size run (benchmarks/human_scale.py).
set -euo pipefail
cd "$(dirname "$0")/.."
R=benchmarks/results

OMP_NUM_THREADS=2 python benchmarks/level1.py --windows 256 --threads 2 --json $R/level1_cpu.json
OMP_NUM_THREADS=1 python benchmarks/annotation.py --copies 5 --json $R/annotation_cpu.json
OMP_NUM_THREADS=2 python benchmarks/levels23.py --contigs chrI chrVI --threads 2 --repeat 1 --json $R/levels23_cpu.json
OMP_NUM_THREADS=2 python benchmarks/levels45.py --threads 2 --l4-bins 4000 8000 --l4-ours-bins 14500 \
    --l5-bins 25000 50000 --repeat 2 --json $R/levels45_cpu.json
OMP_NUM_THREADS=1 python benchmarks/hic_graph.py --bins 300000 --band 300 --far 150 --json $R/hic_graph_cpu.json
OMP_NUM_THREADS=2 python benchmarks/cohort.py --threads 2 --individuals 6 --json $R/cohort_cpu.json
OMP_NUM_THREADS=1 python benchmarks/kernels.py --out $R/kernels_cpu.json
OMP_NUM_THREADS=1 python benchmarks/kernels.py --backward --no-flex --impls ours sdpa sdpa_loop pyg \
    --out $R/kernels_cpu_backward.json
python benchmarks/render_results.py
