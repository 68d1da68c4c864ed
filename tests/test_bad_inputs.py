"""The bad-input battery: what a new user's own files and config can get wrong, and how genoattn answers.

Every case makes its bad input from the real demo data (a FASTA re-wrapped after indexing, a cooler cut
short, a VCF whose index is stale, a config with a key given twice, ...), runs what a user runs (the
`genoattn` command, the pre-flight `genoattn check`, or `snakemake`), and is classified:

* clear     - exit status != 0, and the message names the file (or config key), the record and a fix
              ("Fix"), and nothing that looks complete was left at the output path;
* silent    - exit status 0 (a wrong result or nothing done, without a word);
* traceback - an exception that is not a genoattn error escaped (a Python traceback for the user);
* vague     - refused, but the message lacks the file, the record or the fix, or left a complete-looking
              output behind.

One summary line is printed (`pytest -s tests/test_bad_inputs.py`): tried, clear, silent, traceback,
vague. Every case must be clear.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cooler
import h5py
import numpy as np
import pysam
import pytest
import yaml

from demo_paths import DEMO, ROOT, VCF_1KG, YEAST_COOL, YEAST_FASTA, YEAST_GFF3, YEAST_GTF

pytestmark = pytest.mark.workflow


@dataclass
class Outcome:
    rc: int
    message: str
    escaped: BaseException | None = None


@dataclass
class Case:
    name: str
    area: str
    run: Callable[["Kit", Path], tuple[Outcome, dict]]   # -> outcome, {"file", "record", "outputs"}


@dataclass
class Kit:
    """Good inputs, made once from the real demo data; cases copy and break them."""

    root: Path
    fasta: Path = field(init=False)      # chrI[:30 kb] + chrII[:20 kb], plain, 60 bp lines
    gtf_lines: list[str] = field(init=False)
    gff_lines: list[str] = field(init=False)
    vcf: Path = field(init=False)        # 1000 Genomes chr20:1.50-1.56 Mb, bgzip + tbi
    samples: list[str] = field(init=False)

    def __post_init__(self):
        self.root.mkdir(parents=True, exist_ok=True)
        seqs, name = {}, None
        with gzip.open(YEAST_FASTA, "rt") as fh:
            for line in fh:
                if line.startswith(">"):
                    name = line[1:].split()[0]
                    if len(seqs) == 2:
                        break
                    seqs[name] = []
                else:
                    seqs[name].append(line.strip())
        self.seqs = {"chrI": "".join(seqs["chrI"])[:30000], "chrII": "".join(seqs["chrII"])[:20000]}
        self.fasta = self.root / "small.fa"
        self.write_fasta(self.fasta, self.seqs)
        self.gtf_lines = [ln for ln in gzip.open(YEAST_GTF, "rt").read().splitlines()[:200]]
        self.gff_lines = [ln for ln in gzip.open(YEAST_GFF3, "rt").read().splitlines()[:200]]
        text = self.root / "small.vcf"
        with pysam.VariantFile(str(VCF_1KG)) as vf, open(text, "w") as out:
            out.write(str(vf.header))
            for rec in vf.fetch("20", 1_500_000, 1_560_000):
                out.write(str(rec))
            self.samples = list(vf.header.samples)
        self.vcf = self.root / "small.vcf.gz"
        pysam.tabix_compress(str(text), str(self.vcf), force=True)
        pysam.tabix_index(str(self.vcf), preset="vcf", force=True)

    @staticmethod
    def write_fasta(path, seqs, width=60, header_extra=""):
        with open(path, "w") as fh:
            for k, v in seqs.items():
                fh.write(f">{k}{header_extra}\n" + "\n".join(textwrap.wrap(v, width)) + "\n")

    def config(self, wd: Path, **top) -> Path:
        """A small valid config in ``wd`` (the full demo genome and cooler, the small cohort), changed by ``top``."""
        cfg = {"references": {"yeast": {"fasta": str(YEAST_FASTA), "annotation": str(YEAST_GTF),
                                        "hic": str(YEAST_COOL), "include": ["chrI", "chrIII"]}},
               "cohorts": {"kg": {"vcf": str(self.vcf)}}}
        for key, value in top.items():
            node = cfg
            *path, last = key.split("__")
            for p in path:
                node = node.setdefault(p, {})
            if value is _DELETE:
                node.pop(last, None)
            else:
                node[last] = value
        path = wd / "config.yaml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        return path


_DELETE = object()


def cli(*argv, cwd: Path) -> Outcome:
    from genoattn.cli import main

    out = io.StringIO()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                rc = main([str(a) for a in argv])
            except SystemExit as exc:  # argparse
                rc = exc.code if isinstance(exc.code, int) else 1
            except BaseException as exc:  # noqa: BLE001 - classified as a traceback
                return Outcome(1, out.getvalue(), exc)
    finally:
        os.chdir(old)
    return Outcome(rc, out.getvalue())


def snakemake(wd: Path, *args, timeout=600) -> Outcome:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(wd), "--cores",
           "1", *args]
    proc = subprocess.run(cmd, cwd=wd, capture_output=True, text=True, timeout=timeout)
    text = proc.stdout + proc.stderr
    escaped = RuntimeError("traceback") if "Traceback (most recent call last)" in text else None
    return Outcome(proc.returncode, text, escaped)


CASES: list[Case] = []


def case(area: str):
    def register(fn):
        CASES.append(Case(fn.__name__.removeprefix("case_"), area, fn))
        return fn
    return register


# -- FASTA (genoattn tokenize; the workflow's pre-flight reads the same index) --------------------------------------
def _tokenize(k: Kit, wd: Path, fasta: Path, *extra):
    out = wd / "tokens.zarr"
    return cli("tokenize", "--fasta", fasta, "--out", out, *extra, cwd=wd), out


def _bad_letter(letter):
    def run(k, wd):
        seqs = dict(k.seqs)
        pos = 12345
        seqs["chrII"] = seqs["chrII"][:pos] + letter + seqs["chrII"][pos + 1:]
        fa = wd / "g.fa"
        k.write_fasta(fa, seqs)
        o, out = _tokenize(k, wd, fa)
        # a multi-byte letter changes the line's length: pyfaidx names the record and the line instead
        record = "chrII" if len(letter.encode()) > 1 else "'chrII' at position 12,346"
        return o, {"file": "g.fa", "record": record, "outputs": [out]}
    return run


for _letter, _label in (("X", "x"), ("1", "digit"), ("-", "dash"), ("*", "star"), ("U", "rna_u"), ("é", "utf8")):
    case("fasta")(_bad_letter(_letter))
    CASES[-1].name = f"fasta_invalid_letter_{_label}"


@case("fasta")
def case_fasta_duplicate_contig(k, wd):
    fa = wd / "dup.fa"
    k.write_fasta(fa, k.seqs)
    with open(fa, "a") as fh:
        fh.write(">chrI\nACGT\n")
    o, out = _tokenize(k, wd, fa)
    return o, {"file": "dup.fa", "record": "'chrI'", "outputs": [out]}


@case("fasta")
def case_fasta_empty_contig(k, wd):
    fa = wd / "empty_rec.fa"
    k.write_fasta(fa, k.seqs)
    with open(fa, "a") as fh:
        fh.write(">chrEmpty\n")
    o, out = _tokenize(k, wd, fa)
    return o, {"file": "empty_rec.fa", "record": "'chrEmpty'", "outputs": [out]}


@case("fasta")
def case_fasta_plain_gzip(k, wd):
    fa = wd / "g.fa.gz"
    fa.write_bytes(gzip.compress(k.fasta.read_bytes()))
    o, out = _tokenize(k, wd, fa)
    return o, {"file": "g.fa.gz", "record": "bgzip", "outputs": [out]}


@case("fasta")
def case_fasta_zero_bytes(k, wd):
    fa = wd / "zero.fa"
    fa.write_bytes(b"")
    o, out = _tokenize(k, wd, fa)
    return o, {"file": "zero.fa", "record": "empty (0 bytes)", "outputs": [out]}


@case("fasta")
def case_fasta_missing_file(k, wd):
    o, out = _tokenize(k, wd, wd / "nope.fa")
    return o, {"file": "nope.fa", "record": "not found", "outputs": [out]}


@case("fasta")
def case_fasta_rewrapped_after_indexing(k, wd):
    fa = wd / "g.fa"
    k.write_fasta(fa, k.seqs, width=60)
    pysam.faidx(str(fa))
    k.write_fasta(fa, k.seqs, width=80)  # the index now points into the middle of lines
    o, out = _tokenize(k, wd, fa)
    return o, {"file": "g.fa.fai", "record": "'chrII'", "outputs": [out]}


@case("fasta")
def case_fasta_stale_index_older_than_the_file(k, wd):
    fa = wd / "g.fa"
    k.write_fasta(fa, k.seqs, width=60)
    pysam.faidx(str(fa))
    k.write_fasta(fa, k.seqs, width=70)
    os.utime(fa.with_name("g.fa.fai"), (1, 1))  # older than the FASTA: re-wrapped after indexing
    o, out = _tokenize(k, wd, fa)
    return o, {"file": "g.fa.fai", "record": "'chrII'", "outputs": [out]}


@case("fasta")
def case_fasta_last_record_edited_after_indexing(k, wd):
    fa = wd / "g.fa"
    k.write_fasta(fa, k.seqs)
    pysam.faidx(str(fa))
    with open(fa, "a") as fh:
        fh.write("ACGTACGTAC\n")
    o, out = _tokenize(k, wd, fa)
    return o, {"file": "g.fa.fai", "record": "'chrII'", "outputs": [out]}


@case("fasta")
def case_fasta_truncated_bgzip(k, wd):
    fa = wd / "cut.fa.gz"
    pysam.tabix_compress(str(k.fasta), str(wd / "full.fa.gz"))
    data = (wd / "full.fa.gz").read_bytes()
    fa.write_bytes(data[: len(data) // 2])
    o, out = _tokenize(k, wd, fa)
    return o, {"file": "cut.fa.gz", "record": "truncated", "outputs": [out]}


@case("fasta")
def case_fasta_truncated_bgzip_with_old_index(k, wd):
    fa = wd / "cut.fa.gz"
    pysam.tabix_compress(str(k.fasta), str(fa))
    pysam.faidx(str(fa))  # .fai and .gzi of the whole file
    data = fa.read_bytes()
    fa.write_bytes(data[: len(data) * 2 // 3])  # then an interrupted copy of the data
    os.utime(fa, (1, 1))
    o, out = _tokenize(k, wd, fa)
    return o, {"file": "cut.fa.gz", "record": "truncated", "outputs": [out]}


@case("fasta")
def case_fasta_unequal_line_lengths(k, wd):
    fa = wd / "ragged.fa"
    text = k.fasta.read_text().splitlines()
    text[5] = text[5][:30]  # one short line inside chrI
    fa.write_text("\n".join(text) + "\n")
    o, out = _tokenize(k, wd, fa)
    return o, {"file": "ragged.fa", "record": "chrI", "outputs": [out]}


@case("fasta")
def case_fasta_is_a_gtf(k, wd):
    fa = wd / "genes.fa"
    fa.write_text("\n".join(k.gtf_lines) + "\n")
    o, out = _tokenize(k, wd, fa)
    return o, {"file": "genes.fa", "record": "'>'", "outputs": [out]}


@case("fasta")
def case_fasta_aliases_collide(k, wd):
    o, out = _tokenize(k, wd, k.fasta, "--alias", "chrI=chrX", "--alias", "chrII=chrX")
    return o, {"file": "small.fa", "record": "chrX", "outputs": [out]}


@case("fasta")
def case_fasta_include_selects_nothing(k, wd):
    o, out = _tokenize(k, wd, k.fasta, "--include", "chrZZ")
    return o, {"file": "small.fa", "record": "chrZZ", "outputs": [out]}


@case("fasta")
def case_fasta_include_invalid_regex(k, wd):
    o, out = _tokenize(k, wd, k.fasta, "--include", "chr[I")
    return o, {"file": "include", "record": "'chr[I'", "outputs": [out]}


# -- GTF / GFF3 (genoattn annotate) ---------------------------------------------------------------------------------
def _annotate(wd, lines, name, fasta=YEAST_FASTA, *extra):
    path = wd / name
    path.write_text("\n".join(lines) + "\n")
    out = wd / "annotation.parquet"
    return cli("annotate", "--annotation", path, "--fasta", fasta, "--out", out, *extra, cwd=wd), out


def _gtf_edit(col, value, record):
    def run(k, wd):
        lines = list(k.gtf_lines)
        cols = lines[43].split("\t")
        cols[col] = value
        lines[43] = "\t".join(cols)
        o, out = _annotate(wd, lines, "bad.gtf")
        return o, {"file": "bad.gtf", "record": record, "outputs": [out]}
    return run


for _col, _value, _label in ((3, "12a", "start_not_integer"), (3, "999999", "start_after_end"), (3, "0", "zero_start"),
                             (6, "x", "strand"), (7, "5", "phase"), (4, "230219", "past_contig_end")):
    case("annotation")(_gtf_edit(_col, _value, "line 44"))
    CASES[-1].name = f"gtf_{_label}"


@case("annotation")
def case_gtf_too_few_columns(k, wd):
    lines = list(k.gtf_lines)
    lines[43] = "\t".join(lines[43].split("\t")[:8])
    o, out = _annotate(wd, lines, "cols.gtf")
    return o, {"file": "cols.gtf", "record": "line 44", "outputs": [out]}


@case("annotation")
def case_gtf_spaces_for_tabs(k, wd):
    lines = list(k.gtf_lines)
    lines[43] = lines[43].replace("\t", " ")
    o, out = _annotate(wd, lines, "spaces.gtf")
    return o, {"file": "spaces.gtf", "record": "line 44", "outputs": [out]}


@case("annotation")
def case_gtf_without_gene_id(k, wd):
    lines = list(k.gtf_lines)
    cols = lines[43].split("\t")
    lines[43] = "\t".join(cols[:8]) + '\ttranscript_id "x";'
    o, out = _annotate(wd, lines, "noid.gtf")
    return o, {"file": "noid.gtf", "record": "line 44", "outputs": [out]}


@case("annotation")
def case_gff3_parent_never_appears(k, wd):
    lines = list(k.gff_lines)
    i = next(i for i, ln in enumerate(lines) if "\texon\t" in ln and i > 60)
    parent = lines[i].split("Parent=")[1].split(";")[0]
    lines = [ln for ln in lines if f"ID={parent};" not in ln and not ln.endswith(f"ID={parent}")]
    o, out = _annotate(wd, lines, "orphan.gff3")
    return o, {"file": "orphan.gff3", "record": parent, "outputs": [out]}


@case("annotation")
def case_gff3_bad_strand(k, wd):
    lines = list(k.gff_lines)
    i = next(i for i, ln in enumerate(lines) if ln.startswith("chrI\t") and "\tCDS\t" in ln)
    lines[i] = lines[i].replace("\t-\t", "\t*\t").replace("\t+\t", "\t*\t")
    o, out = _annotate(wd, lines, "strand.gff3")
    return o, {"file": "strand.gff3", "record": f"line {i + 1}", "outputs": [out]}


@case("annotation")
def case_annotation_contigs_not_in_fasta(k, wd):
    lines = [ln.replace("chrI\t", "NC_001133.9\t", 1) if ln.startswith("chrI\t") else ln for ln in k.gtf_lines]
    o, out = _annotate(wd, lines, "ncbi_names.gtf")
    return o, {"file": "ncbi_names.gtf", "record": "NC_001133.9", "outputs": [out]}


@case("annotation")
def case_annotation_not_gtf_or_gff(k, wd):
    o, out = _annotate(wd, ["chrI\t100\t200\tYAL068C\t0\t-"] * 3, "genes.bed")
    return o, {"file": "genes.bed", "record": "GTF or GFF3", "outputs": [out]}


@case("annotation")
def case_annotation_truncated_gzip(k, wd):
    path = wd / "cut.gtf.gz"
    data = YEAST_GTF.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    out = wd / "annotation.parquet"
    o = cli("annotate", "--annotation", path, "--fasta", YEAST_FASTA, "--out", out, cwd=wd)
    return o, {"file": "cut.gtf.gz", "record": "truncated", "outputs": [out]}


@case("annotation")
def case_annotation_missing_file(k, wd):
    out = wd / "annotation.parquet"
    o = cli("annotate", "--annotation", wd / "nope.gtf", "--fasta", YEAST_FASTA, "--out", out, cwd=wd)
    return o, {"file": "nope.gtf", "record": "not", "outputs": [out]}


@case("annotation")
def case_annotation_bad_alias_option(k, wd):
    out = wd / "annotation.parquet"
    o = cli("annotate", "--annotation", YEAST_GTF, "--fasta", YEAST_FASTA, "--out", out, "--alias", "chrI", cwd=wd)
    return o, {"file": "--alias", "record": "'chrI'", "outputs": [out]}


@case("annotation")
def case_annotation_without_features(k, wd):
    o, out = _annotate(wd, ["##gff-version 3", "chrI\tx\tregion\t1\t100\t+\t.\t.\tID=r"], "empty.gff3")
    return o, {"file": "empty.gff3", "record": "no gene", "outputs": [out]}


# -- cooler / .mcool (genoattn check: the workflow's pre-flight; genoattn hic: the job) ------------------------------
def _cool_copy(wd, name="c.cool"):
    dst = wd / name
    shutil.copy(YEAST_COOL, dst)
    return dst


def _check(k, wd, **top):
    cfg = k.config(wd, **top)
    return cli("check", cfg, cwd=wd)


def _hic_job(k, wd, **top):
    cfg = k.config(wd, **top)
    out = wd / "results" / "yeast" / "hic" / "chrI.zarr"
    return cli("hic", "--config", cfg, "--contig", "chrI", cwd=wd), out


@case("hic")
def case_hic_not_hdf5(k, wd):
    bad = wd / "text.cool"
    bad.write_text("chrI\t0\t10000\n")
    return _check(k, wd, references__yeast__hic=str(bad)), {"file": "text.cool", "record": "not a cooler",
                                                           "outputs": []}


@case("hic")
def case_hic_hdf5_without_cooler(k, wd):
    bad = wd / "empty.cool"
    with h5py.File(bad, "w") as f:
        f.create_group("something")
    return _check(k, wd, references__yeast__hic=str(bad)), {"file": "empty.cool", "record": "no cooler",
                                                           "outputs": []}


@case("hic")
def case_hic_truncated_file(k, wd):
    bad = wd / "cut.cool"
    data = YEAST_COOL.read_bytes()
    bad.write_bytes(data[: int(len(data) * 0.7)])
    return _check(k, wd, references__yeast__hic=str(bad)), {"file": "cut.cool", "record": "truncated", "outputs": []}


@case("hic")
def case_hic_pixel_index_past_the_table(k, wd):
    bad = _cool_copy(wd, "short_pixels.cool")
    with h5py.File(bad, "r+") as f:
        for col in ("bin1_id", "bin2_id", "count"):
            data = f["pixels"][col][: -5000]
            del f["pixels"][col]
            f["pixels"].create_dataset(col, data=data)
    return _check(k, wd, references__yeast__hic=str(bad)), {"file": "short_pixels.cool", "record": "bin1_offset",
                                                           "outputs": []}


@case("hic")
def case_hic_weight_column_missing(k, wd):
    return (_check(k, wd, references__yeast__hic_balance="KR"),
            {"file": "yeast.10kb.cool", "record": "'KR'", "outputs": []})


@case("hic")
def case_hic_all_weights_nan(k, wd):
    bad = _cool_copy(wd, "nan.cool")
    with h5py.File(bad, "r+") as f:
        f["bins"]["weight"][:] = np.nan
    return _check(k, wd, references__yeast__hic=str(bad)), {"file": "nan.cool", "record": "chrI", "outputs": []}


@case("hic")
def case_hic_one_contig_almost_all_nan(k, wd):
    bad = _cool_copy(wd, "mostly_nan.cool")
    clr = cooler.Cooler(str(bad))
    lo, hi = clr.extent("chrIII")
    with h5py.File(bad, "r+") as f:
        w = f["bins"]["weight"][:]
        w[lo:hi - 1] = np.nan  # all but one bin
        f["bins"]["weight"][:] = w
    return _check(k, wd, references__yeast__hic=str(bad)), {"file": "mostly_nan.cool", "record": "chrIII",
                                                           "outputs": []}


@case("hic")
def case_hic_in_memory_balance_does_not_converge(k, wd):
    bad = _cool_copy(wd, "unbalanced.cool")
    with h5py.File(bad, "r+") as f:
        del f["bins"]["weight"]
    o, out = _hic_job(k, wd, references__yeast__hic=str(bad), levels__hic__balance_missing="balance",
                      levels__hic__balance_max_iters=2)
    return o, {"file": "unbalanced.cool", "record": "did not converge", "outputs": [out]}


@case("hic")
def case_hic_mcool_resolution_not_there(k, wd):
    mcool = wd / "z.mcool"
    cooler.zoomify_cooler(str(YEAST_COOL), str(mcool), [10000, 20000], chunksize=200_000)
    return (_check(k, wd, references__yeast__hic=str(mcool), references__yeast__hic_resolution=5000),
            {"file": "z.mcool", "record": "5000", "outputs": []})


@case("hic")
def case_hic_cool_resolution_mismatch(k, wd):
    return (_check(k, wd, references__yeast__hic_resolution=5000),
            {"file": "yeast.10kb.cool", "record": "5000", "outputs": []})


@case("hic")
def case_hic_other_assembly_lengths(k, wd):
    bad = _cool_copy(wd, "swapped.cool")
    cooler.rename_chroms(cooler.Cooler(str(bad)), {"chrI": "chrIII_", "chrIII": "chrI"})
    cooler.rename_chroms(cooler.Cooler(str(bad)), {"chrIII_": "chrIII"})
    return _check(k, wd, references__yeast__hic=str(bad)), {"file": "swapped.cool", "record": "chrI",
                                                           "outputs": []}


@case("hic")
def case_hic_contig_missing_from_cooler(k, wd):
    bad = _cool_copy(wd, "renamed.cool")
    cooler.rename_chroms(cooler.Cooler(str(bad)), {"chrIII": "III_renamed"})
    return _check(k, wd, references__yeast__hic=str(bad)), {"file": "renamed.cool", "record": "chrIII",
                                                           "outputs": []}


@case("hic")
def case_hic_two_chroms_map_to_one_contig(k, wd):
    # the cooler's chrMito (not in the FASTA) aliased onto chrI, which the cooler has too
    return (_check(k, wd, references__yeast__contig_aliases={"chrMito": "chrI"}),
            {"file": "yeast.10kb.cool", "record": "'chrI'", "outputs": []})


def _bedpe(k, wd, text, name="bp.bedpe"):
    path = wd / name
    path.write_text(text)
    cfg = k.config(wd, references__yeast__hic_breakpoints=str(path))
    out = wd / "results" / "yeast" / "hic" / "trans.zarr"
    return cli("hic", "--config", cfg, "--contig", "trans", cwd=wd), out


@case("hic")
def case_bedpe_too_few_columns(k, wd):
    o, out = _bedpe(k, wd, "chrI\t100\t200\tchrIII\t500\n")
    return o, {"file": "bp.bedpe", "record": "line 1", "outputs": [out]}


@case("hic")
def case_bedpe_not_integers(k, wd):
    o, out = _bedpe(k, wd, "chrI\t100\t200\tchrIII\t5x0\t600\n")
    return o, {"file": "bp.bedpe", "record": "line 1", "outputs": [out]}


@case("hic")
def case_bedpe_unknown_contig(k, wd):
    o, out = _bedpe(k, wd, "chrI\t100\t200\tchr99\t500\t600\n")
    return o, {"file": "bp.bedpe", "record": "line 1", "outputs": [out]}


@case("hic")
def case_bedpe_past_contig_end(k, wd):
    o, out = _bedpe(k, wd, "chrI\t900000\t900100\tchrIII\t500\t600\n")
    return o, {"file": "bp.bedpe", "record": "line 1", "outputs": [out]}


@case("hic")
def case_regulatory_bed_malformed(k, wd):
    bed = wd / "re.bed"
    bed.write_text("chrI\t100\n")
    cfg = k.config(wd, references__yeast__regulatory_elements=str(bed),
                   levels={"level4": {"gene_context": False}})
    return cli("check", cfg, cwd=wd), {"file": "re.bed", "record": "line 1", "outputs": []}


# -- VCF / BCF (genoattn check; genoattn genotypes) ------------------------------------------------------------------
def _genotypes(k, wd, vcf, **top):
    cfg = k.config(wd, cohorts={"kg": {"vcf": str(vcf), **top}})
    out = wd / "results" / "kg" / "genotypes.zarr"
    return cli("genotypes", "--config", cfg, "--step", "genotypes", cwd=wd), out


@case("vcf")
def case_vcf_not_bgzipped(k, wd):
    vcf = wd / "plain.vcf"
    vcf.write_text(gzip.decompress(k.vcf.read_bytes()).decode())
    o, out = _genotypes(k, wd, vcf)
    return o, {"file": "plain.vcf", "record": "bgzip", "outputs": [out]}


@case("vcf")
def case_vcf_without_index(k, wd):
    vcf = wd / "noidx.vcf.gz"
    shutil.copy(k.vcf, vcf)
    o, out = _genotypes(k, wd, vcf)
    return o, {"file": "noidx.vcf.gz", "record": "index", "outputs": [out]}


@case("vcf")
def case_vcf_index_older_than_the_vcf(k, wd):
    vcf = wd / "stale.vcf.gz"
    shutil.copy(k.vcf, vcf)
    shutil.copy(f"{k.vcf}.tbi", f"{vcf}.tbi")
    os.utime(f"{vcf}.tbi", (1, 1))
    o, out = _genotypes(k, wd, vcf)
    return o, {"file": "stale.vcf.gz.tbi", "record": "older", "outputs": [out]}


@case("vcf")
def case_vcf_missing(k, wd):
    o = cli("check-config", k.config(wd, cohorts={"kg": {"vcf": str(wd / "nope.vcf.gz")}}), cwd=wd)
    return o, {"file": "nope.vcf.gz", "record": "cohorts.kg.vcf", "outputs": []}


@case("vcf")
def case_vcf_contigs_not_in_the_reference(k, wd):
    o, out = _genotypes(k, wd, k.vcf, reference="yeast")
    return o, {"file": "small.vcf.gz", "record": "20", "outputs": [out]}


@case("vcf")
def case_vcf_region_malformed(k, wd):
    o, out = _genotypes(k, wd, k.vcf, regions=["20:abc"])
    return o, {"file": "cohorts.kg.regions", "record": "'20:abc'", "outputs": [out]}


@case("vcf")
def case_vcf_region_contig_absent(k, wd):
    o, out = _genotypes(k, wd, k.vcf, regions=["21:1-1000"])
    return o, {"file": "small.vcf.gz", "record": "21", "outputs": [out]}


@case("vcf")
def case_vcf_no_variant_left(k, wd):
    o, out = _genotypes(k, wd, k.vcf, regions=["20:1-1000"])
    return o, {"file": "small.vcf.gz", "record": "no variant left", "outputs": [out]}


@case("vcf")
def case_vcf_ploidy_too_small(k, wd):
    o, out = _genotypes(k, wd, k.vcf, ploidy=1)
    return o, {"file": "small.vcf.gz", "record": "ploidy", "outputs": [out]}


@case("vcf")
def case_vcf_truncated(k, wd):
    vcf = wd / "cut.vcf.gz"
    data = k.vcf.read_bytes()
    vcf.write_bytes(data[: len(data) // 2])
    pysam.tabix_index(str(k.vcf), preset="vcf", force=True)  # (keep the kit's index fresh)
    shutil.copy(f"{k.vcf}.tbi", f"{vcf}.tbi")
    o, out = _genotypes(k, wd, vcf)
    return o, {"file": "cut.vcf.gz", "record": "truncated", "outputs": [out]}


@case("vcf")
def case_vcf_split_pieces_missing_index(k, wd):
    vcf = wd / "noidx.vcf.gz"
    shutil.copy(k.vcf, vcf)
    o = cli("check", k.config(wd, cohorts={"kg": {"vcf": str(vcf), "split_bp": 20000}}), cwd=wd)
    return o, {"file": "noidx.vcf.gz", "record": "index", "outputs": []}


# -- sample sheet (genoattn check) ------------------------------------------------------------------------------------
def _sheet(k, wd, text, name="samples.tsv"):
    sheet = wd / name
    sheet.write_text(text)
    return cli("check", k.config(wd, samples=str(sheet)), cwd=wd), {"file": name, "outputs": []}


@case("samples")
def case_sheet_missing_file(k, wd):
    o = cli("check-config", k.config(wd, samples=str(wd / "nope.tsv")), cwd=wd)
    return o, {"file": "nope.tsv", "record": "samples", "outputs": []}


@case("samples")
def case_sheet_without_cohort_column(k, wd):
    o, e = _sheet(k, wd, "sample_id\tsex\n" + f"{k.samples[0]}\tF\n")
    return o, {**e, "record": "cohort"}


@case("samples")
def case_sheet_comma_separated(k, wd):
    o, e = _sheet(k, wd, "sample_id,cohort\n" + f"{k.samples[0]},kg\n")
    return o, {**e, "record": "sample_id"}


@case("samples")
def case_sheet_whitespace_in_id(k, wd):
    o, e = _sheet(k, wd, "sample_id\tcohort\nbad id\tkg\n")
    return o, {**e, "record": "line 2"}


@case("samples")
def case_sheet_duplicate_sample(k, wd):
    o, e = _sheet(k, wd, "sample_id\tcohort\n" + f"{k.samples[0]}\tkg\n" * 2)
    return o, {**e, "record": k.samples[0]}


@case("samples")
def case_sheet_sample_not_in_vcf(k, wd):
    o, e = _sheet(k, wd, "sample_id\tcohort\nNOT_A_SAMPLE\tkg\n")
    return o, {**e, "record": "NOT_A_SAMPLE"}


@case("samples")
def case_sheet_unknown_cohort(k, wd):
    o, e = _sheet(k, wd, "sample_id\tcohort\n" + f"{k.samples[0]}\tnot_a_cohort\n")
    return o, {**e, "record": "not_a_cohort"}


# -- config (genoattn check-config: what the workflow validates first) ------------------------------------------------
def _config_text(k, wd, text, record, name="bad.yaml"):
    path = wd / name
    path.write_text(text)
    return cli("check-config", path, cwd=wd), {"file": name, "record": record, "outputs": []}


def _config_case(record, file=None, **top):
    def run(k, wd):
        path = k.config(wd, **top)
        return cli("check-config", path, cwd=wd), {"file": file or record, "record": record, "outputs": []}
    return run


@case("config")
def case_config_yaml_syntax(k, wd):
    return _config_text(k, wd, "references:\n  yeast:\n    fasta: [unclosed\n", "line")


@case("config")
def case_config_duplicate_reference_name(k, wd):
    text = f"references:\n  yeast:\n    fasta: {YEAST_FASTA}\n  yeast:\n    fasta: {k.fasta}\n"
    return _config_text(k, wd, text, "'yeast'")


@case("config")
def case_config_top_level_is_a_list(k, wd):
    return _config_text(k, wd, "- references\n- cohorts\n", "mapping")


@case("config")
def case_config_empty(k, wd):
    return _config_text(k, wd, "# nothing\n", "neither")


_CONFIG_CASES = {
    "misspelt_key": (_config_case("windw", "levels.level1", levels={"level1": {"windw": 512}})),
    "wrong_type": (_config_case("levels.level1.window", levels={"level1": {"window": "512"}})),
    "enum": (_config_case("kernels.backend", kernels={"backend": "cuda-magic"})),
    "dim_not_divisible": (_config_case("levels.level2", levels={"level2": {"dim": 100, "heads": 8}})),
    "invalid_include_regex": (_config_case("references.yeast.include", references__yeast__include=["chr[I"])),
    "stride_larger_than_window": (_config_case("levels.level1.stride", levels={"level1": {"stride": 1024}})),
    "gene_context_without_annotation": (_config_case(
        "levels.level4.gene_context", references__yeast__annotation=_DELETE, levels={"level4": {"gene_context": True}})),
    "cohort_reference_unknown": (_config_case("cohorts.kg.reference", cohorts={"kg": {"vcf": str(VCF_1KG),
                                                                                       "reference": "hg19"}})),
    "cohort_named_like_a_reference": (_config_case("cohorts.yeast", cohorts={"yeast": {"vcf": str(VCF_1KG)}})),
    "checkpoint_missing": (_config_case("levels.level3.checkpoint", levels={"level3": {"checkpoint": "nope.st"}})),
    "checkpoint_train_untrainable": (_config_case("levels.level4.checkpoint", levels={"level4": {"checkpoint": "train"}})),
    "checkpoint_train_without_held_out": (_config_case("levels.level1.checkpoint",
                                                       levels={"level1": {"checkpoint": "train"}})),
    "conv_kernel_even": (_config_case("levels.level1.conv_kernel", levels={"level1": {"conv_kernel": 8}})),
    "nodes_without_bed": (_config_case("levels.level4.nodes", levels={"level4": {"nodes": "regulatory_elements"}})),
    "fasta_missing": (_config_case("references.yeast.fasta", references__yeast__fasta="nope.fa")),
    "negative_split_bp": (_config_case("cohorts.kg.split_bp", cohorts={"kg": {"vcf": str(VCF_1KG), "split_bp": -5}})),
    "held_out_without_test": (_config_case("references.yeast.held_out", references__yeast__held_out={"validation": []})),
}
for _name, _fn in _CONFIG_CASES.items():
    case("config")(_fn)
    CASES[-1].name = f"config_{_name}"


@case("config")
def case_checkpoint_for_another_level(k, wd):
    from genoattn.levels.nucleotide import NucleotideAttention
    from genoattn.model import save_checkpoint

    path = wd / "l1.safetensors"
    save_checkpoint(NucleotideAttention(128, 8, 512), path, "level1")
    tok = wd / "results" / "yeast"
    tok.mkdir(parents=True)
    cfg = k.config(wd, references__yeast__include=["chrI"], levels={"level2": {"checkpoint": str(path)}})
    cli("tokenize", "--fasta", YEAST_FASTA, "--out", tok / "tokens.zarr", "--include", "chrI", cwd=wd)
    cli("annotate", "--annotation", YEAST_GTF, "--fasta", YEAST_FASTA, "--out", tok / "annotation.parquet", cwd=wd)
    cli("level1", "--config", cfg, cwd=wd)
    out = tok / "level2" / "chrI.zarr"
    return cli("level2", "--config", cfg, cwd=wd), {"file": "l1.safetensors", "record": "level1", "outputs": [out]}


@case("config")
def case_checkpoint_that_does_not_fit(k, wd):
    from genoattn.levels.nucleotide import NucleotideAttention
    from genoattn.model import save_checkpoint

    path = wd / "small.safetensors"
    save_checkpoint(NucleotideAttention(32, 2, 512), path, "level1")
    (wd / "results" / "yeast").mkdir(parents=True)
    cfg = k.config(wd, references__yeast__include=["chrI"], references__yeast__annotation=_DELETE,
                   levels={"level1": {"checkpoint": str(path)}})
    cli("tokenize", "--fasta", YEAST_FASTA, "--out", wd / "results" / "yeast" / "tokens.zarr", "--include", "chrI",
        cwd=wd)
    out = wd / "results" / "yeast" / "level1" / "chrI.zarr"
    return cli("level1", "--config", cfg, cwd=wd), {"file": "small.safetensors", "record": "dim", "outputs": [out]}


@case("config")
def case_held_out_contig_not_in_the_reference(k, wd):
    (wd / "results" / "yeast").mkdir(parents=True)
    cfg = k.config(wd, references__yeast__held_out={"test": ["chrXI"]})
    cli("tokenize", "--fasta", YEAST_FASTA, "--out", wd / "results" / "yeast" / "tokens.zarr", "--include", "chrI",
        "--include", "chrIII", cwd=wd)
    out = wd / "results" / "yeast" / "train" / "level1" / "model.safetensors"
    return cli("train", "level1", "--config", cfg, "--steps", "1", cwd=wd), {"file": "held_out", "record": "chrXI",
                                                                             "outputs": [out]}


# -- the workflow itself (snakemake --configfile: what a user's first run sees) ---------------------------------------
@case("workflow")
def case_workflow_duplicate_key(k, wd):
    path = wd / "mine.yaml"
    path.write_text(f"references:\n  yeast:\n    fasta: {YEAST_FASTA}\n  yeast:\n    fasta: {k.fasta}\n")
    return snakemake(wd, "-n", "--configfile", path), {"file": "mine.yaml", "record": "'yeast'", "outputs": []}


@case("workflow")
def case_workflow_bad_input_stops_before_any_job(k, wd):
    bad = _cool_copy(wd, "nan.cool")
    with h5py.File(bad, "r+") as f:
        f["bins"]["weight"][:] = np.nan
    cfg = k.config(wd, references__yeast__hic=str(bad))
    o = snakemake(wd, "tokenize", "--configfile", cfg)
    return o, {"file": "nan.cool", "record": "chrI", "outputs": [wd / "results" / "yeast" / "tokens.zarr"]}


@case("workflow")
def case_workflow_gene_context_without_annotation(k, wd):
    cfg = k.config(wd, references__yeast__annotation=_DELETE, levels={"level4": {"gene_context": True}})
    return snakemake(wd, "-n", "--configfile", cfg), {"file": "levels.level4.gene_context", "record": "yeast",
                                                      "outputs": []}


# -- CLI ----------------------------------------------------------------------------------------------------------------
@case("cli")
def case_cli_chunk_size_negative(k, wd):
    o, out = _tokenize(k, wd, k.fasta, "--chunk-size", "-5")
    return o, {"file": "--chunk-size", "record": "-5", "outputs": [out], "fix": "minimum"}


@case("cli")
def case_cli_contig_not_selected(k, wd):
    o = cli("level2", "--config", k.config(wd), "--contig", "chrXX", cwd=wd)
    return o, {"file": "--contig", "record": "'chrXX'", "outputs": [], "fix": "include/exclude"}


@case("cli")
def case_cli_shard_out_of_range(k, wd):
    o = cli("level6", "--config", k.config(wd), "--shard", "99", cwd=wd)
    return o, {"file": "--shard", "record": "99", "outputs": [], "fix": "shard(s)"}


@case("cli")
def case_cli_out_with_several_stores(k, wd):
    o = cli("hic", "--config", k.config(wd), "--out", wd / "x.zarr", cwd=wd)
    return o, {"file": "--out", "record": "writes", "outputs": [wd / "x.zarr"], "fix": "pick one"}


@case("cli")
def case_cli_input_of_the_level_below_missing(k, wd):
    o = cli("level2", "--config", k.config(wd), "--contig", "chrI", cwd=wd)
    return o, {"file": "annotation.parquet", "record": "snakemake", "outputs": [], "fix": "make it first"}


@case("cli")
def case_cli_train_without_tokens(k, wd):
    cfg = k.config(wd, references__yeast__held_out={"test": ["chrIII"]})
    o = cli("train", "level1", "--config", cfg, cwd=wd)
    return o, {"file": "tokens.zarr", "record": "tokenize", "outputs": [], "fix": "make it first"}


@case("cli")
def case_cli_reference_unknown(k, wd):
    o = cli("level1", "--config", k.config(wd), "--reference", "hg38", cwd=wd)
    return o, {"file": "--reference", "record": "'hg38'", "outputs": [], "fix": "references:"}


@case("cli")
def case_cli_level1_without_enough_arguments(k, wd):
    o = cli("level1", "--tokens", wd / "t.zarr", cwd=wd)
    return o, {"file": "genoattn level1", "record": "--contig", "outputs": [], "fix": "give"}


# -- faults: kill, lock, disk full ------------------------------------------------------------------------------------
@case("fault")
def case_fault_sigkill_mid_write(k, wd):
    """A tokenize job killed while writing leaves only its temporary; the rerun completes."""
    big = wd / "big.fa"
    k.write_fasta(big, {f"c{i}": k.seqs["chrI"] * 8 for i in range(12)})
    out = wd / "tokens.zarr"
    cmd = [sys.executable, "-m", "genoattn.cli", "tokenize", "--fasta", str(big), "--out", str(out),
           "--chunk-size", "1024"]
    proc = subprocess.Popen(cmd, cwd=wd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not list(wd.glob("tokens.zarr.tmp-*/c3")):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = not out.exists() and bool(list(wd.glob("tokens.zarr.tmp-*")))
    rerun = subprocess.run(cmd, cwd=wd, capture_output=True, text=True)
    recovered = rerun.returncode == 0 and out.exists() and not list(wd.glob("tokens.zarr.tmp-*"))
    msg = f"killed: only a temporary left: {partial}; rerun completed and cleaned up: {recovered}. Fix: rerun"
    return Outcome(1 if partial and recovered else 0, msg), {"file": "temporary", "record": "rerun", "outputs": []}


@case("fault")
def case_fault_snakemake_killed_leaves_its_lock(k, wd):
    """Snakemake itself SIGKILLed mid-run (a node failure): the next run says the directory is locked and
    how to unlock it; nothing complete-looking is at the output path."""
    big = wd / "big.fa"
    k.write_fasta(big, {f"c{i}": k.seqs["chrI"] * 8 for i in range(12)})
    cfg = wd / "config.yaml"
    cfg.write_text(yaml.safe_dump({"references": {"big": {"fasta": str(big)}},
                                   "levels": {"tokenize": {"chunk_size": 1024}}}))
    out = wd / "results" / "big" / "tokens.zarr"
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(wd), "--cores", "1",
           "tokenize", "--configfile", str(cfg)]
    proc = subprocess.Popen(cmd, cwd=wd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list(out.parent.glob("tokens.zarr.tmp-*/c3")):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    o = snakemake(wd, "tokenize", "--configfile", cfg)
    return o, {"file": str(wd), "record": "locked", "outputs": [out], "fix": "--unlock"}


@case("fault")
def case_fault_disk_full(k, wd):
    """Writing into a 128 KB file system: ENOSPC, named, with the fix, and no half-written store."""
    disk = wd / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", str(disk)],
                             capture_output=True).returncode == 0
    try:
        if mounted:
            out = disk / "tokens.zarr"
            o = cli("tokenize", "--fasta", YEAST_FASTA, "--out", out, "--include", "chrIV", cwd=wd)
            expect = {"file": "tokens.zarr", "record": "No space left", "outputs": [out]}
        else:  # no mount in this sandbox: a file-size limit gives the same failed write (EFBIG)
            code = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
                    "resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000)); "
                    "from genoattn.cli import main; sys.exit(main(sys.argv[1:]))")
            out = disk / "tokens.zarr"
            proc = subprocess.run([sys.executable, "-c", code, "tokenize", "--fasta", str(YEAST_FASTA), "--out",
                                   str(out), "--include", "chrIV"], cwd=wd, capture_output=True, text=True)
            text = proc.stdout + proc.stderr
            o = Outcome(proc.returncode, text, RuntimeError("traceback") if "Traceback" in text else None)
            expect = {"file": "tokens.zarr", "record": "File too large", "outputs": [out]}
        leftovers = list(disk.glob("tokens.zarr.tmp-*"))
        if leftovers:  # the failed write must not leave its temporary (it removes it on error)
            o = Outcome(o.rc, o.message + f"\nleft behind: {leftovers}", o.escaped)
            expect["record"] = "<nothing left behind>"
        return o, expect
    finally:
        if mounted:
            subprocess.run(["umount", str(disk)], capture_output=True)


# -- the battery ------------------------------------------------------------------------------------------------------
def classify(outcome: Outcome, expect: dict) -> tuple[str, str]:
    if outcome.escaped is not None:
        return "traceback", f"{type(outcome.escaped).__name__}: {outcome.escaped}"
    if outcome.rc == 0:
        return "silent", "exit status 0"
    msg = outcome.message
    missing = [what for what, text in (("file", expect["file"]), ("record", expect["record"]),
                                       ("fix", expect.get("fix", "Fix"))) if text not in msg]
    left = [str(p) for p in expect.get("outputs", []) if Path(p).exists()]
    if missing or left:
        return "vague", f"message lacks {missing}, left {left}: {msg.strip()[-600:]}"
    return "clear", ""


def test_bad_input_battery(tmp_path):
    kit = Kit(tmp_path / "kit")
    counts = {"clear": 0, "silent": 0, "traceback": 0, "vague": 0}
    problems = []
    for i, c in enumerate(CASES):
        wd = tmp_path / f"{i:03d}_{c.name}"
        wd.mkdir()
        outcome, expect = c.run(kit, wd)
        kind, detail = classify(outcome, expect)
        counts[kind] += 1
        if kind != "clear":
            problems.append(f"{c.area}/{c.name}: {kind}: {detail}")
    print(f"\nbad-input battery: {len(CASES)} tried, {counts['clear']} clear, {counts['silent']} silent, "
          f"{counts['traceback']} traceback, {counts['vague']} vague "
          f"({', '.join(f'{a} {sum(c.area == a for c in CASES)}' for a in dict.fromkeys(c.area for c in CASES))})")
    assert len(CASES) >= 80
    assert not problems, "\n".join(problems)
