# Config validation, wildcard constraints and the helpers every rule file uses.
import os

from genoattn.checks import preflight
from genoattn.config import validate_config
from genoattn.workflow import Layout


configfile: "config/config.yaml"


_validated = validate_config(config, base_dir=os.getcwd())
config.clear()
config.update(_validated)
# Every input against its reference (indexes and headers only), before any job runs.
preflight(config, quiet=True)
L = Layout(config)

# The repository root, for the SLURM jobs' precommand (profiles/slurm/job_env.sh) and the conda
# envs' post-deploy scripts (pip install of this checkout); exported to jobs by sbatch.
os.environ.setdefault(
    "GENOATTN_SRC", os.path.dirname(os.path.abspath(workflow.main_snakefile))
)

# Software deployment: every rule names a conda env and a container image (see containers/).
ENV_CPU = "../../envs/genoattn-cpu.yaml"
ENV_GPU = "../../envs/genoattn-gpu.yaml"
IMAGE_CPU = "docker://ghcr.io/genoattn/genoattn-cpu:0.1.0"
IMAGE_GPU = "docker://ghcr.io/genoattn/genoattn-gpu:0.1.0"

# Targets registered by each rule file; rule `all` (Snakefile) asks for all of them.
TARGETS = {}


wildcard_constraints:
    reference=L.wildcard_pattern(L.references),
    cohort=L.wildcard_pattern(L.cohorts),
    contig="[^/]+",
