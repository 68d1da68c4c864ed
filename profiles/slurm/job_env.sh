# Sourced by every SLURM job before Snakemake runs the rule (profiles/slurm/config.yaml: precommand).
# POSIX sh (sbatch runs the job script with /bin/sh). Puts Triton's kernel cache on node-local scratch,
# one directory per user and node that outlives the job: the next GPU job on the node reuses the
# compiled kernels and (TRITON_CACHE_AUTOTUNING, Triton >= 3.3) the autotuning results instead of
# compiling and retuning. Not the default ~/.triton/cache: it sits on the shared home file system,
# where concurrent jobs race on NFS/Lustre file locks. Triton writes each cache entry to a temporary
# name and renames it, which is atomic on a local file system, so concurrent jobs on one node are safe.
# Node-local scratch that outlives jobs: /tmp on most clusters (SLURM_TMPDIR is often per job and
# removed with it); sites export GENOATTN_SCRATCH to use another directory.
_genoattn_user="$(id -un 2>/dev/null || echo "${USER:-user}")"
TRITON_CACHE_DIR="${GENOATTN_SCRATCH:-/tmp}/genoattn-triton-${_genoattn_user}"
TRITON_CACHE_AUTOTUNING=1
export TRITON_CACHE_DIR TRITON_CACHE_AUTOTUNING
mkdir -p "$TRITON_CACHE_DIR" && chmod 700 "$TRITON_CACHE_DIR"
echo "genoattn job env: host=$(hostname) SLURM_JOB_ID=${SLURM_JOB_ID:-none} TRITON_CACHE_DIR=$TRITON_CACHE_DIR CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-unset}" >&2
unset _genoattn_user
