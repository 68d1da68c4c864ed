#!/usr/bin/env bash
# The one prepared GPU run for the attention kernels (issue 3): correctness of every Triton kernel on
# the GPU, then the benchmark of every pattern against its peers, in one command of under 10 minutes.
#
#   bash benchmarks/gpu_check.sh [OUTDIR]      # OUTDIR defaults to $OUT, then benchmarks/results
#
# Writes OUTDIR/{env.txt,tests.txt,kernels_cuda_a.json,kernels_cuda_b.json,kernels_cuda_bwd.json,bench.txt}.
# Each stage has its own time limit (together 580 s), so a slow stage leaves the others' results. Needs torch with CUDA, triton,
# torch_geometric (for the GATConv peer) and this package installed (pip install -e ".[test]").
set -u
OUTDIR="${1:-${OUT:-benchmarks/results}}"
mkdir -p "$OUTDIR"
unset TRITON_INTERPRET
export TRITON_CACHE_DIR="${TRITON_CACHE_DIR:-$(mktemp -d)}"

{
  date -u
  nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,memory.total --format=csv
  python -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)"
} > "$OUTDIR/env.txt" 2>&1
cat "$OUTDIR/env.txt"

# 1. every kernel against the float64 reference and the peers, on the GPU (bf16 on tensor cores here)
timeout 150 python -m pytest tests/kernels -q -x -p no:cacheprovider 2>&1 | tail -20 | tee "$OUTDIR/tests.txt"

# 2. the benchmark, at the levels' real shapes (SHAPES["cuda"] in benchmarks/kernels.py)
timeout 170 python benchmarks/kernels.py --device cuda --patterns dense varlen \
  --out "$OUTDIR/kernels_cuda_a.json" 2>&1 | tee "$OUTDIR/bench.txt"
timeout 170 python benchmarks/kernels.py --device cuda --patterns block_sparse local_global graph \
  --out "$OUTDIR/kernels_cuda_b.json" 2>&1 | tee -a "$OUTDIR/bench.txt"

# 3. forward + backward (the levels are trained) for the dense and graph patterns, without FlexAttention
timeout 90 python benchmarks/kernels.py --device cuda --patterns dense graph --backward --no-flex \
  --out "$OUTDIR/kernels_cuda_bwd.json" 2>&1 | tee -a "$OUTDIR/bench.txt"
