"""What every benchmark JSON records about its run: the command, the machine and the load it saw.

A CPU number means little without the load: on the 2-core development machine another job doubles a wall
time. ``load_average_1min`` (before and after) lets a reader, and benchmarks/render_results.py, say so.
"""

from __future__ import annotations

import os
import platform
import sys
import time


def begin() -> dict:
    return {"start": time.time(), "load_before": os.getloadavg()[0]}


def meta(begun: dict, **extra) -> dict:
    """The ``meta`` entry of a benchmark JSON, for a run that started at ``begin()``."""
    script = os.path.relpath(sys.argv[0], os.path.join(os.path.dirname(__file__), ".."))
    return {"command": " ".join(["python", script, *sys.argv[1:]]), "cpu_count": os.cpu_count(),
            "machine": platform.machine(), "python": platform.python_version(),
            "time": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(begun["start"])),
            "wall_s": round(time.time() - begun["start"], 1),
            "load_average_1min": {"before": round(begun["load_before"], 2), "after": round(os.getloadavg()[0], 2)},
            **extra}
