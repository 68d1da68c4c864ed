# The config, the job specification and the helpers every rule file uses.
#
# Config: `snakemake --configfile mine.yaml` runs mine.yaml alone; without --configfile the demo
# (config/config.yaml) runs. There is deliberately no `configfile:` directive: Snakemake would merge
# it under every --configfile, and a user's run would also run the demo.
#
# Every rule takes its inputs, output and params from genoattn.jobs (the job specification the CLI
# reads too) and runs workflow/scripts/run_job.py. Parsing this file imports neither torch nor zarr.
import os

from snakemake.exceptions import WorkflowError

from genoattn import jobs as J
from genoattn.checks import preflight
from genoattn.config import workflow_config
from genoattn.workflow import Layout

try:
    _validated = workflow_config(
        config,
        workflow.overwrite_configfiles,
        workflow.config_settings.overwrite_config,
        base_dir=os.getcwd(),
    )
    config.clear()
    config.update(_validated)
    # Every input against its reference (indexes and headers only), before any job runs; only in the
    # process that plans the jobs, not again in each cluster job that re-parses the workflow.
    if workflow.is_main_process:
        preflight(config, quiet=True)
    L = Layout(config)
except (
    ValueError
) as _error:  # a bad config or input: its message (file, record, fix), no Python frames
    raise WorkflowError(str(_error)) from None

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

# Outputs of every per-level target (`snakemake tokenize`, `level1`, ...); rule `all` asks for all.
TARGETS = J.targets(L)


wildcard_constraints:
    reference=L.wildcard_pattern(L.references),
    cohort=L.wildcard_pattern(L.cohorts),
    contig="[^/]+",


def job_output(rule, sibling=None):
    """The rule's output pattern, its wildcards left as {name} (``sibling``: a file beside it)."""
    spec = J.spec(rule)
    return spec.output_path(L, {n: f"{{{n}}}" for n in spec.wildcard_names}, sibling)


def job_inputs(rule):
    return lambda wildcards: J.spec(rule).inputs(L, dict(wildcards))


def job_params(rule):
    return lambda wildcards: J.spec(rule).params(L, dict(wildcards))


def job_derived(rule):
    return lambda wildcards: J.canonical(J.spec(rule).derived(L, dict(wildcards)))


def job_mem_mb(rule):
    mem_mb = J.spec(rule).mem_mb
    if callable(mem_mb):  # grows with the input and the attempt
        return lambda wildcards, attempt: mem_mb(L, dict(wildcards), attempt)
    return mem_mb
