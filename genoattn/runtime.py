"""What a workflow script needs around the call into genoattn: logging, threads, config."""

from __future__ import annotations

import logging
import os
import sys
import time
from contextlib import contextmanager

log = logging.getLogger("genoattn")


def setup_logging(logfile: str | None = None, level: int = logging.INFO) -> None:
    handlers = [logging.StreamHandler(sys.stderr)]
    if logfile:
        os.makedirs(os.path.dirname(logfile) or ".", exist_ok=True)
        handlers.append(logging.FileHandler(logfile, mode="w"))
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        handlers=handlers, force=True)


def set_threads(n: int | None) -> None:
    if n:
        import torch
        torch.set_num_threads(max(1, int(n)))


@contextmanager
def snakemake_job(smk):
    """Log to the rule's log file, honour threads and the job's ``kernels`` keys; yield the job's config
    (``params.config``, the keys the rule reads); log an exception and re-raise it so Snakemake marks
    the job failed (its outputs are removed, ours never written)."""
    job_config = dict(smk.params.get("config", None) or {})
    setup_logging(smk.log[0] if len(smk.log) else None)
    set_threads(smk.threads)
    if "kernels" in job_config:
        from genoattn.kernels.dispatch import configure

        configure(job_config["kernels"])
    start = time.time()
    try:
        yield job_config
    except Exception:
        log.exception("job failed")
        raise
    finally:
        log.info("finished in %.1f s", time.time() - start)


class Progress:
    """Rate-limited progress lines for long loops (every ``every`` seconds)."""

    def __init__(self, total: int, what: str, every: float = 10.0):
        self.total, self.what, self.every = total, what, every
        self.start = self.last = time.time()
        self.done = 0

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.time()
        if now - self.last >= self.every or self.done >= self.total:
            rate = self.done / max(now - self.start, 1e-9)
            log.info("%s: %d/%d (%.1f%%, %.1f/s)", self.what, self.done, self.total,
                     100.0 * self.done / max(self.total, 1), rate)
            self.last = now
