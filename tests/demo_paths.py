"""Paths of the bundled real demo data, shared by the tests (import: `from demo_paths import ...`).

Not in conftest.py: tests/kernels has its own conftest, and `from conftest import` would pick
whichever of the two pytest imported first."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo"
YEAST_FASTA = DEMO / "yeast_R64" / "S288C_R64-2-1.fa.gz"
YEAST_GTF = DEMO / "yeast_R64" / "S288C_R64-2-1.gtf.gz"
YEAST_GFF3 = DEMO / "yeast_R64" / "S288C_R64-2-1.gff3.gz"
NCBI_FASTA = DEMO / "yeast_chrI_ncbi" / "ScerR64_I_GCF_000146045.2_R64_genomic.fna.gz"
YEAST_COOL = DEMO / "hic" / "yeast.10kb.cool"
VCF_1KG = DEMO / "1kg_chr20" / "reference.vcf.gz"


def section(name: str, **values) -> dict:
    """A config section as the validated config has it (the schema's defaults), some keys replaced:
    section("levels.level1", dim=32), section("reference", fasta=...), section("kernels", device="cpu")."""
    from genoattn.config import defaults

    return {**defaults(name), **values}


def store_arrays(path) -> dict:
    """Every array of a zarr store (sub-groups as 'group/name'), read into memory: for comparing stores."""
    import zarr

    out = {}

    def walk(group, prefix=""):
        for name, arr in group.arrays():
            out[prefix + name] = arr[...]
        for name, sub in group.groups():
            walk(sub, f"{prefix}{name}/")

    walk(zarr.open_group(str(path), mode="r"))
    return out


def snakemake(workdir, *args, check=True):
    """Run the workflow on ``workdir/config.yaml`` in ``workdir`` (2 cores); raise with the output on failure."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(Path(workdir) / "config.yaml"), "--cores", "2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if check and proc.returncode:
        raise AssertionError(f"snakemake failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc
