"""One process of a multi-process training job: `torchrun ... -m genoattn.training.worker JOB.json`.

genoattn.jobs_run starts it with torchrun when ``training.devices`` > 1; the job (rule, wildcards, inputs,
output, params) comes as JSON, so every rank runs exactly the job the rule or the CLI built.
"""

import json
import sys

from genoattn.jobs import Job, run_job
from genoattn.runtime import setup_logging

if __name__ == "__main__":
    setup_logging(None)
    with open(sys.argv[1]) as fh:
        job = Job(**json.load(fh))
    if "kernels" in job.config:
        from genoattn.kernels.dispatch import configure

        configure(job.config["kernels"])
    run_job(job)
