#!/usr/bin/env bash
# Run by Snakemake inside the freshly created conda env (found next to the env file by name:
# <env>.post-deploy.sh), with the working directory of the snakemake run. Installs the genoattn
# package from this checkout, without dependencies (the env file lists them).
# GENOATTN_SRC (default: the current directory, i.e. the repository root) must hold pyproject.toml.
set -euo pipefail
src="${GENOATTN_SRC:-$PWD}"
if ! grep -q '^name = "genoattn"' "$src/pyproject.toml" 2>/dev/null; then
  echo "genoattn post-deploy: no genoattn pyproject.toml in '$src'. Run snakemake from the" \
       "repository root, or export GENOATTN_SRC=/path/to/genoattn before snakemake." >&2
  exit 1
fi
# editable: the env follows the checkout (a `git pull` needs no env rebuild)
python -m pip install --no-deps --no-build-isolation -e "$src"
python -c "import genoattn; print('genoattn', genoattn.__version__, 'from', genoattn.__file__)"
