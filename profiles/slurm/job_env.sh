# Sourced by every SLURM job before Snakemake runs the rule (profiles/slurm/config.yaml: precommand).
# POSIX sh (sbatch runs the job script with /bin/sh). Puts Triton's kernel cache on node-local
# scratch, one directory per job: the default (~/.triton/cache) sits on the shared home file
# system, where concurrent jobs compiling the same kernels race on NFS/Lustre file locks.
# Sites whose scratch variable differs (e.g. $LOCAL_SCRATCH) export GENOATTN_SCRATCH instead.
_genoattn_scratch="${GENOATTN_SCRATCH:-${SLURM_TMPDIR:-${TMPDIR:-/tmp}}}"
TRITON_CACHE_DIR="${_genoattn_scratch}/genoattn-triton-${SLURM_JOB_ID:-$$}"
export TRITON_CACHE_DIR
mkdir -p "$TRITON_CACHE_DIR"
echo "genoattn job env: host=$(hostname) SLURM_JOB_ID=${SLURM_JOB_ID:-none} TRITON_CACHE_DIR=$TRITON_CACHE_DIR CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-unset}" >&2
unset _genoattn_scratch
# remove the per-job cache when the job's shell exits (scratch is not always cleaned by the site)
trap 'rm -rf "$TRITON_CACHE_DIR"' EXIT
