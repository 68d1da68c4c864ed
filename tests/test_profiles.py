"""Static checks of cluster readiness: rules, profiles, conda envs, containers, lint, formatting.

No conda, docker or apptainer here: env files and images are checked statically (they parse, pin
what pyproject.toml pins, copy files that exist). The rules are read through Snakemake's own API
(in a subprocess), so rules defined in loops (report.smk) are seen too.
"""

import json
import os
import re
import subprocess
import sys
import tomllib

import pytest
import yaml
from pathlib import Path

from genoattn.jobs import SPECS

from demo_paths import ROOT, YEAST_FASTA

PROFILE = ROOT / "profiles" / "slurm" / "config.yaml"
DEFAULT_PROFILE = ROOT / "profiles" / "default" / "config.yaml"
ENV_CPU = ROOT / "envs" / "genoattn-cpu.yaml"
ENV_GPU = ROOT / "envs" / "genoattn-gpu.yaml"
# files of this issue, held to the lint/format checks strictly (the others are reported)
OWN_SMK = [ROOT / "workflow" / "rules" / "report.smk", ROOT / "workflow" / "rules" / "report_helpers.smk"]

_DUMP = r"""
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import OutputSettings, ResourceSettings
with SnakemakeApi(OutputSettings()) as api:
    wf = api.workflow(resource_settings=ResourceSettings(cores=1), snakefile=Path(sys.argv[1]),
                      workdir=Path(".") )._workflow
    out = {}
    for r in wf.rules:
        res = {}
        for k, v in r.resources.items():
            if k.startswith("_") or k == "tmpdir":
                continue
            raw = getattr(v, "raw", v)
            res[k] = raw if isinstance(raw, (int, float, str)) else "<callable>"
        out[r.name] = {"file": str(r.snakefile), "norun": bool(r.norun), "log": bool(r.log),
                       "benchmark": r.benchmark is not None,
                       "conda": str(r.conda_env) if r.conda_env else None,
                       "container": str(r.container_img) if r.container_img else None,
                       "script": r.script, "shell": r.shellcmd, "resources": res,
                       "params": list(r.params._names)}
    print("RULES_JSON" + json.dumps(out, default=str))
"""


@pytest.fixture(scope="module")
def rules(tmp_path_factory):
    """Every rule of the workflow, parsed by Snakemake with a small config (chrI, all levels on)."""
    wd = tmp_path_factory.mktemp("rules")
    (wd / "config").mkdir()
    cfg = {"references": {"yeast": {"fasta": str(YEAST_FASTA), "include": ["chrI"]}}}
    (wd / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, "-c", _DUMP, str(ROOT / "Snakefile")], cwd=wd,
                          capture_output=True, text=True, timeout=300)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RULES_JSON")]
    assert line, f"could not parse the workflow:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return json.loads(line[0][len("RULES_JSON"):])


def job_rules(rules):
    """Rules that run something (not the target rules, which only collect inputs)."""
    return {n: r for n, r in rules.items() if not r["norun"]}


def common_smk():
    text = (ROOT / "workflow" / "rules" / "common.smk").read_text()
    values = dict(re.findall(r'^(ENV_CPU|ENV_GPU|IMAGE_CPU|IMAGE_GPU)\s*=\s*"([^"]+)"', text, re.M))
    assert set(values) == {"ENV_CPU", "ENV_GPU", "IMAGE_CPU", "IMAGE_GPU"}, values
    return values


def slurm_profile():
    return yaml.safe_load(PROFILE.read_text())


# -- rules --------------------------------------------------------------------------------------
def test_every_job_rule_has_log_benchmark_conda_container_and_params(rules):
    c = common_smk()
    jobs = job_rules(rules)
    assert {"tokenize_reference", "level1_contig", "plot_level1"} <= set(jobs)
    bad = {}
    for name, r in jobs.items():
        missing = [k for k in ("log", "benchmark") if not r[k]]
        if r["conda"] not in (c["ENV_CPU"], c["ENV_GPU"]):
            missing.append(f"conda={r['conda']}")
        if r["container"] not in (c["IMAGE_CPU"], c["IMAGE_GPU"]):
            missing.append(f"container={r['container']}")
        # the GPU env goes with the GPU image, the CPU env with the CPU image
        if (r["conda"] == c["ENV_GPU"]) != (r["container"] == c["IMAGE_GPU"]):
            missing.append("conda/container mismatch")
        want = ["config", "derived"] if name in SPECS else ["level", "extra"]
        missing += [f"params.{p}" for p in want if p not in r["params"]]
        if missing:
            bad[name] = missing
    assert not bad, f"rules missing directives: {bad}"


def test_env_paths_in_common_smk_point_at_the_env_files():
    c = common_smk()
    rules_dir = ROOT / "workflow" / "rules"
    assert (rules_dir / c["ENV_CPU"]).resolve() == ENV_CPU
    assert (rules_dir / c["ENV_GPU"]).resolve() == ENV_GPU


# -- SLURM profile ------------------------------------------------------------------------------
def test_gpu_rules_ask_for_a_gpu_and_cpu_rules_do_not(rules):
    c = common_smk()
    prof = slurm_profile()
    sr = prof["set-resources"]
    gpu_rules = {n for n, r in job_rules(rules).items() if r["conda"] == c["ENV_GPU"]}
    assert {"level1_contig", "level5_genome"} <= gpu_rules
    # the job specification says which rules are GPU rules: the env, the image and the profile agree with it
    assert gpu_rules == {s.rule for s in SPECS.values() if s.gpu}
    for name in gpu_rules:
        res = {**job_rules(rules)[name]["resources"], **sr.get(name, {})}  # the rule's own, then the profile's
        assert int(res.get("gpu", 0)) >= 1 or "gpu" in str(res.get("gres", "")), f"{name}: no GPU requested"
        assert res.get("slurm_partition"), f"{name}: no GPU partition"
    for name in set(job_rules(rules)) - gpu_rules:
        res = {**job_rules(rules)[name]["resources"], **sr.get(name, {})}
        assert "gpu" not in res and "gres" not in res, f"CPU rule {name} asks for a GPU"
    assert prof["default-resources"]["slurm_partition"] not in {sr[n]["slurm_partition"] for n in gpu_rules}


def test_every_rule_but_the_plots_comes_from_the_job_specification(rules):
    jobs = job_rules(rules)
    assert set(SPECS) == {n for n in jobs if not n.startswith("plot_")}
    for name in SPECS:
        assert jobs[name]["script"].endswith("run_job.py"), name


def test_profile_rules_exist_in_the_workflow(rules):
    """A renamed rule would silently lose its GPU or memory settings."""
    unknown = set(slurm_profile()["set-resources"]) - set(rules)
    assert not unknown, f"profiles/slurm names rules the workflow does not have: {sorted(unknown)}"


def _eval(expr, attempt):
    return eval(str(expr), {"attempt": attempt})  # the profile's resource expressions


def test_memory_and_runtime_grow_with_the_attempt(rules):
    prof = slurm_profile()
    assert prof["retries"] >= 1
    dr = prof["default-resources"]
    for key in ("mem_mb", "runtime"):
        assert _eval(dr[key], 1) < _eval(dr[key], 2) < _eval(dr[key], 3)
    sr = prof["set-resources"]
    for name, res in sr.items():
        for key in ("mem_mb", "runtime"):
            if key in res:
                assert _eval(res[key], 1) < _eval(res[key], 2), f"{name}.{key} does not grow"
    # a fixed mem_mb/runtime in a rule wins over default-resources: the profile must override it
    fixed = {n: [k for k in ("mem_mb", "runtime") if isinstance(r["resources"].get(k), int)]
             for n, r in job_rules(rules).items()}
    missing = {n: ks for n, ks in fixed.items() if any(k not in sr.get(n, {}) for k in ks)}
    assert not missing, f"fixed resource hints that would not grow with attempt: {missing}"


def test_every_profile_entry_is_commented():
    for path in (PROFILE, DEFAULT_PROFILE):
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            m = re.match(r"^( {0,2})([\w-]+):", line)
            if not m or "#" in line:
                continue
            prev = lines[i - 1].strip() if i else ""
            assert prev.startswith("#"), f"{path.name}:{i + 1} '{line.strip()}' has no comment"


def test_profile_sets_triton_cache_latency_and_retries():
    prof = slurm_profile()
    assert prof["executor"] == "slurm"
    assert prof["latency-wait"] >= 30
    assert "job_env.sh" in prof["precommand"]
    script = prof["precommand"].split()[-1].strip("\"'").replace("${GENOATTN_SRC:-.}", str(ROOT))
    assert Path(script).is_file()


def test_job_env_keeps_one_triton_cache_per_user_and_node_across_jobs(tmp_path):
    """Two jobs on one node share the node-local Triton cache (compiled kernels and autotuning results), and it
    outlives them: the next GPU job does not compile and retune again."""
    import getpass

    script = ROOT / "profiles" / "slurm" / "job_env.sh"
    probe = (f'. "{script}" && echo "CACHE=$TRITON_CACHE_DIR AUTOTUNE=$TRITON_CACHE_AUTOTUNING" && '
             'test -d "$TRITON_CACHE_DIR" && touch "$TRITON_CACHE_DIR/kernel-$SLURM_JOB_ID"')
    seen = []
    for job in ("4242", "4243"):
        env = {**os.environ, "SLURM_JOB_ID": job, "GENOATTN_SCRATCH": str(tmp_path)}
        proc = subprocess.run(["sh", "-c", probe], env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        seen.append(proc.stdout.split("CACHE=")[1].split()[0])
        assert "AUTOTUNE=1" in proc.stdout
    cache = tmp_path / f"genoattn-triton-{getpass.getuser()}"
    assert seen == [str(cache), str(cache)]
    assert sorted(p.name for p in cache.iterdir()) == ["kernel-4242", "kernel-4243"]   # kept after both jobs
    assert oct(cache.stat().st_mode & 0o777) == "0o700"


def test_workflow_profile_does_not_override_the_slurm_profile():
    """profiles/default is loaded on every run and wins over --profile: no conflicting keys."""
    default = yaml.safe_load(DEFAULT_PROFILE.read_text())
    slurm = slurm_profile()
    clash = {k for k in set(default) & set(slurm) if default[k] != slurm[k]}
    assert not clash, clash
    assert not {"executor", "jobs", "default-resources", "set-resources", "resources"} & set(default)


def test_profile_slurm_resolves_from_the_repository_root(monkeypatch):
    """`snakemake --profile slurm`, typed from the repo root, finds profiles/slurm (symlink ./slurm)."""
    from snakemake.cli import get_profile_dir

    monkeypatch.chdir(ROOT)
    found = get_profile_dir("slurm")
    assert found is not None
    assert found[1].resolve() == PROFILE
    assert found[1].resolve() == get_profile_dir("profiles/slurm")[1].resolve()


def _dry(args, tmp_path):
    (tmp_path / "config").mkdir(exist_ok=True)
    cfg = {"references": {"yeast": {"fasta": str(YEAST_FASTA), "include": ["chrI"]}}}
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
           "--configfile", str(tmp_path / "config" / "config.yaml"), "-n", "--nolock", *args]
    # no sbatch needed for a dry run: hide any installed SLURM to prove it
    env = {**os.environ, "PATH": os.pathsep.join([os.path.dirname(sys.executable), "/usr/bin", "/bin"])}
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)


def test_dry_run_with_profile_slurm_routes_level1_to_the_gpu_partition(tmp_path):
    proc = _dry(["--profile", "slurm", "level1"], tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "Using profiles slurm" in out
    blocks = out.split("\nrule ")
    l1 = [b for b in blocks if b.startswith("level1_contig:")]
    tok = [b for b in blocks if b.startswith("tokenize_reference:")]
    assert l1 and tok
    assert "slurm_partition=gpu" in l1[0] and "gpu=1" in l1[0]
    assert "slurm_partition=cpu" in tok[0] and "gpu=" not in tok[0]


# -- conda envs ---------------------------------------------------------------------------------
CONDA_NAME = {"torch": "pytorch", "matplotlib": "matplotlib-base"}
NOT_IN_ENVS = {"snakemake", "snakemake-executor-plugin-slurm"}  # the driver's, not the jobs'


def _pyproject_deps():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    out = {}
    for d in deps:
        m = re.match(r"^([A-Za-z0-9_.\-]+)\s*([^;]*)", d)
        out[m.group(1).lower()] = m.group(2).replace(" ", "")
    return out


def _env_deps(path):
    env = yaml.safe_load(path.read_text())
    out = {}
    for d in env["dependencies"]:
        if isinstance(d, dict):
            continue
        name, _, spec = d.partition(" ")
        out[name.split("::")[-1].lower()] = spec.strip()
    return env, out


@pytest.mark.parametrize("path", [ENV_CPU, ENV_GPU], ids=["cpu", "gpu"])
def test_env_file_pins_what_pyproject_pins(path):
    env, deps = _env_deps(path)
    assert env["name"] == path.stem
    assert "conda-forge" in env["channels"]
    assert "pip" in deps and "python" in deps
    for name, spec in _pyproject_deps().items():
        if name in NOT_IN_ENVS or (name == "triton" and path == ENV_CPU):
            continue
        conda = CONDA_NAME.get(name, name)
        assert conda in deps, f"{path.name}: {name} missing"
        lower = re.search(r">=([\w.]+)", spec)
        if lower:
            assert f">={lower.group(1)}" in deps[conda], f"{path.name}: {conda} {deps[conda]} vs pyproject {spec}"
        upper = re.search(r"<([\w.]+)", spec)
        if upper:
            assert f"<{upper.group(1)}" in deps[conda], f"{path.name}: {conda} upper bound"
    if path == ENV_GPU:
        assert "cuda" in deps["pytorch"] and "cuda-version" in deps and "triton" in deps
    else:
        assert "cpu" in deps["pytorch"]


@pytest.mark.parametrize("path", [ENV_CPU, ENV_GPU], ids=["cpu", "gpu"])
def test_env_installs_the_package_through_a_post_deploy_script(path):
    """Snakemake copies the env file into .snakemake/conda/ before `conda env create`, so relative
    pip paths would resolve against the copy; the package comes from <env>.post-deploy.sh."""
    script = path.with_name(path.stem + ".post-deploy.sh")
    assert script.is_file() and os.access(script, os.X_OK)
    text = script.read_text()
    assert "pip install --no-deps" in text and "pyproject.toml" in text
    env = yaml.safe_load(path.read_text())
    assert not any(isinstance(d, dict) and "pip" in d for d in env["dependencies"])
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0


def test_post_deploy_refuses_a_directory_without_the_package(tmp_path):
    script = ENV_CPU.with_name("genoattn-cpu.post-deploy.sh")
    proc = subprocess.run(["bash", str(script)], cwd=tmp_path, capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if k != "GENOATTN_SRC"})
    assert proc.returncode != 0 and "GENOATTN_SRC" in proc.stderr


# -- containers ---------------------------------------------------------------------------------
def _docker_copies(path):
    srcs = []
    for line in path.read_text().splitlines():
        m = re.match(r"^\s*COPY\s+(?!--from)(.+)$", line)
        if m:
            parts = m.group(1).split()
            srcs += [p for p in parts[:-1] if not p.startswith("--")]
    return srcs


@pytest.mark.parametrize("kind", ["cpu", "gpu"])
def test_dockerfile_copies_files_that_exist_and_are_not_ignored(kind):
    path = ROOT / "containers" / f"Dockerfile.{kind}"
    srcs = _docker_copies(path)
    assert "pyproject.toml" in srcs and any(s.rstrip("/") == "genoattn" for s in srcs)
    ignore = (ROOT / ".dockerignore").read_text()
    for s in srcs:
        assert (ROOT / s).exists(), f"{path.name}: COPY {s} does not exist"
        assert f"!{s.rstrip('/')}" in ignore, f".dockerignore excludes {s}"
    text = path.read_text()
    assert re.search(r"^FROM\s+\S+", text, re.M)
    assert "pip install ." in text
    if kind == "gpu":
        assert "nvidia/cuda" in text and "download.pytorch.org/whl/${TORCH_CUDA}" in text
        assert "gcc" in text and "python3-dev" in text  # triton compiles its launcher at run time
        # the triton bounds of pyproject.toml are checked in the build
        spec = re.search(r'"triton>=(\d+)\.(\d+),<(\d+)\.(\d+)', (ROOT / "pyproject.toml").read_text())
        a, b, c, d = (int(x) for x in spec.groups())
        assert f"assert ({a}, {b}) <= v < ({c}, {d}), v" in text


@pytest.mark.parametrize("kind", ["cpu", "gpu"])
def test_apptainer_definition_copies_files_that_exist(kind):
    path = ROOT / "containers" / f"genoattn-{kind}.def"
    text = path.read_text()
    assert re.search(r"^Bootstrap:\s*docker", text, re.M) and re.search(r"^From:\s*\S+", text, re.M)
    files = re.split(r"^%files\s*$", text, maxsplit=1, flags=re.M)[1].split("\n%", 1)[0]
    entries = [ln.split()[0] for ln in files.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert "pyproject.toml" in entries and "genoattn" in entries
    for e in entries:
        assert (ROOT / e).exists(), f"{path.name}: %files {e} does not exist"


def test_image_names_match_the_package_version():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    c = common_smk()
    assert c["IMAGE_CPU"] == f"docker://ghcr.io/genoattn/genoattn-cpu:{version}"
    assert c["IMAGE_GPU"] == f"docker://ghcr.io/genoattn/genoattn-gpu:{version}"
    for kind in ("cpu", "gpu"):
        assert f"ghcr.io/genoattn/genoattn-{kind}:{version}" in (ROOT / "containers" / f"Dockerfile.{kind}").read_text()


# -- lint and format ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lint_report(tmp_path_factory):
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint", "--nolock"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    flagged = {}
    for m in re.finditer(r"^Lints for (?:snakefile (\S+)|rule (\S+) \(line \d+, (\S+)\)):", out, re.M):
        path = m.group(1) or m.group(3)
        flagged.setdefault(os.path.relpath(path, ROOT), []).append(m.group(2) or "file")
    return proc.returncode, flagged, out


def test_lint_is_clean_for_the_report_rules(lint_report):
    _, flagged, out = lint_report
    own = {os.path.relpath(p, ROOT) for p in OWN_SMK}
    assert not (own & set(flagged)), out[-4000:]
    assert not [f for f in flagged if f.startswith("workflow/rules/report")]


def test_lint_is_clean_for_the_whole_workflow(lint_report):
    rc, flagged, out = lint_report
    assert not flagged, out[-4000:]
    assert rc == 0, out[-4000:]


def _snakefmt(paths):
    return subprocess.run([sys.executable, "-m", "snakefmt", "--check", *map(str, paths)],
                          capture_output=True, text=True, timeout=120)


def test_snakefmt_clean_on_the_report_rules():
    proc = _snakefmt(OWN_SMK)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_snakefmt_clean_on_every_rule_file():
    files = [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]
    proc = subprocess.run([sys.executable, "-m", "snakefmt", "--diff", *map(str, files)],
                          capture_output=True, text=True, timeout=120)
    bad = re.findall(r"=====> Diff for (\S+) <=====", proc.stdout + proc.stderr)
    assert not bad, proc.stdout[-4000:]
    assert _snakefmt(files).returncode == 0


# -- what the images install ------------------------------------------------------------------------
def test_the_package_holds_no_link_and_ships_its_schemas(tmp_path):
    """The images copy genoattn/ alone (.dockerignore) and `pip install .`: a link out of it would dangle there."""
    links = [p for p in (ROOT / "genoattn").rglob("*") if p.is_symlink()]
    assert not links, f"links in the package: {links}"
    assert (ROOT / "workflow" / "schemas" / "config.schema.yaml").resolve() == \
        (ROOT / "genoattn" / "schemas" / "config.schema.yaml").resolve()
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                           str(tmp_path), str(ROOT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    import zipfile

    names = zipfile.ZipFile(next(tmp_path.glob("genoattn-*.whl"))).namelist()
    assert {"genoattn/schemas/config.schema.yaml", "genoattn/schemas/samples.schema.yaml",
            "genoattn/smoke.py"} <= set(names)


@pytest.mark.parametrize("path", ["Dockerfile.cpu", "Dockerfile.gpu", "genoattn-cpu.def", "genoattn-gpu.def"])
def test_every_image_runs_the_smoke_test_at_build_time(path):
    text = (ROOT / "containers" / path).read_text()
    build = text if path.startswith("Dockerfile") else re.split(r"^%post\s*$", text, flags=re.M)[1].split("\n%", 1)[0]
    assert "-m genoattn.smoke" in build


def test_the_smoke_test_passes_here():
    proc = subprocess.run([sys.executable, "-m", "genoattn.smoke"], capture_output=True, text=True, cwd="/")
    assert proc.returncode == 0 and "smoke test passed" in proc.stdout, proc.stderr[-2000:]
