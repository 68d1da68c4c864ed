"""Time the README's demo command from a fresh clone: the number README.md quotes.

    python benchmarks/demo_time.py --workdir /scratch/demo-clone [--json benchmarks/results/demo_time.json]

Clones this checkout's HEAD into ``--workdir`` (which must not exist), reads the first ``bash`` block of
README.md (the install + demo command) and runs it there step by step in one shell, so each ``&&`` part
(venv, pip install, snakemake) gets its own wall time. Afterwards it reads every job's Snakemake
``benchmark:`` file under ``results/`` (seconds, peak RSS per job) and the size of ``results/``.

The machine's load average is recorded before and after, and sampled each minute during the run: a
demo time means something only on a machine that did nothing else (say so when quoting it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STEP_MARK = "@@demo-time-step"


def readme_demo_command(readme: Path) -> str:
    """The first fenced ``bash`` block of the README: the one-line install + demo command."""
    blocks = re.findall(r"```bash\n(.*?)```", readme.read_text(), flags=re.S)
    if not blocks:
        raise SystemExit(f"{readme}: no ```bash block found; the demo command is expected as the first one")
    command = " ".join(line.strip() for line in blocks[0].strip().splitlines() if line.strip())
    if "snakemake" not in command:
        raise SystemExit(f"{readme}: the first bash block does not run snakemake: {command!r}")
    return command


def timed_script(command: str) -> tuple[str, list[str]]:
    """A bash script running each ``&&`` step of ``command`` in one shell, printing a timestamp after each."""
    steps = [s.strip() for s in command.split("&&")]
    lines = ["set -e", f'echo "{STEP_MARK} start $(date +%s.%N)"']
    for i, step in enumerate(steps):
        lines += [step, f'echo "{STEP_MARK} {i} $(date +%s.%N)"']
    return "\n".join(lines) + "\n", steps


def load_sampler(samples: list, stop: threading.Event, every_s: float = 60.0) -> None:
    while not stop.wait(every_s):
        samples.append([round(time.time(), 1), round(os.getloadavg()[0], 2)])


def job_benchmarks(results: Path) -> list[dict]:
    """One row per Snakemake benchmark file: rule-level path, seconds, peak RSS (MB)."""
    rows = []
    for tsv in sorted(results.rglob("benchmarks/**/*.tsv")):
        lines = tsv.read_text().splitlines()
        if len(lines) < 2:
            continue
        head, values = lines[0].split("\t"), lines[-1].split("\t")
        rec = dict(zip(head, values))
        rows.append({"job": str(tsv.relative_to(results)), "s": float(rec["s"]),
                     "max_rss_mb": float(rec["max_rss"]) if rec.get("max_rss", "NA") != "NA" else None})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, required=True, help="where to clone (must not exist)")
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "demo_time.json")
    ap.add_argument("--keep", action="store_true", help="keep the clone (default: delete results/ and .venv)")
    args = ap.parse_args(argv)

    if args.workdir.exists():
        raise SystemExit(f"--workdir {args.workdir} exists; give a new directory")
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(args.workdir)], check=True)
    command = readme_demo_command(args.workdir / "README.md")
    script, steps = timed_script(command)
    print(f"[demo_time] clone of {commit[:10]} in {args.workdir}; running: {command}", flush=True)

    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = ":".join(p for p in env.get("PATH", "").split(":") if ".venv" not in p)
    samples: list = []
    stop = threading.Event()
    sampler = threading.Thread(target=load_sampler, args=(samples, stop), daemon=True)
    load_before = os.getloadavg()
    sampler.start()
    t0 = time.time()
    log = args.workdir / "demo_time.log"
    marks = {}
    with open(log, "w") as fh:
        proc = subprocess.Popen(["bash", "-c", script], cwd=args.workdir, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:
            if line.startswith(STEP_MARK):
                _, key, stamp = line.split()
                marks[key] = float(stamp)
                print(f"[demo_time] {key} at {float(stamp) - t0:.0f} s", flush=True)
            else:
                fh.write(line)
        rc = proc.wait()
    wall = time.time() - t0
    stop.set()
    load_after = os.getloadavg()
    if rc != 0:
        raise SystemExit(f"[demo_time] the README command failed (rc {rc}); see {log}")

    step_s, prev = [], marks["start"]
    for i, step in enumerate(steps):
        step_s.append({"step": step, "s": round(marks[str(i)] - prev, 1)})
        prev = marks[str(i)]
    results = args.workdir / "results"
    jobs = job_benchmarks(results)
    size = subprocess.run(["du", "-sb", str(results)], capture_output=True, text=True, check=True).stdout.split()[0]
    out = {
        "command": command, "commit": commit, "uncommitted_changes": bool(dirty),
        "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime(t0)) + " UTC",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0]},
        "wall_s": round(wall, 1), "steps": step_s,
        "load_average_1min": {"before": round(load_before[0], 2), "after": round(load_after[0], 2),
                              "per_minute": [s[1] for s in samples]},
        "jobs": len(jobs), "job_seconds_sum": round(sum(j["s"] for j in jobs), 1),
        "slowest_jobs": sorted(jobs, key=lambda j: -j["s"])[:12],
        "peak_rss_mb_max": max((j["max_rss_mb"] or 0) for j in jobs) if jobs else None,
        "results_bytes": int(size),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1) + "\n")
    print(f"[demo_time] {wall / 60:.1f} min, {len(jobs)} jobs -> {args.json}", flush=True)
    if not args.keep:
        subprocess.run(["rm", "-rf", str(results), str(args.workdir / ".venv")], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
