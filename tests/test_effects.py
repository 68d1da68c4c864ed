"""Variant effects on the real yeast genome: consequences (checked against bcftools csq and against an
independent translation of the mutated spliced CDS), the level-1 LLR's strand symmetry, bad VCFs, and
`snakemake effects` end to end. Every variant is made here from the reference sequence."""

import shutil
import subprocess

import numpy as np
import pandas as pd
import pysam
import pytest

from demo_paths import DEMO, ROOT, YEAST_COOL, YEAST_FASTA, YEAST_GFF3, YEAST_GTF, snakemake

from genoattn import alphabet
from genoattn import transcripts as tx
from genoattn.effects import consequence as cq
from genoattn.effects.saturation import every_snv, write_sites_vcf

# chrI genes: SNC1 (+, an intron; a codon split by it), TFC3 (-, an intron), PAU8 (-, one exon), YAL067W-A (+)
GENES = ("YAL030W", "YAL001C", "YAL068C", "YAL067W-A")


@pytest.fixture(scope="module")
def chr1():
    from genoattn.io.annotation.parse import parse_annotation

    ann, _ = parse_annotation(YEAST_GFF3)
    model = tx.build_transcripts(ann, select="all", contigs=["chrI"])
    fa = pysam.FastaFile(str(YEAST_FASTA))
    letters = {"chrI": lambda s, e: fa.fetch("chrI", s, e).upper()}
    genes = [t for t in model.transcripts if t.gene_id in GENES]
    assert len(genes) == 4
    return {"model": model, "genes": genes, "letters": letters, "index": cq.TranscriptIndex(model.for_contig("chrI")),
            "lengths": dict(zip(fa.references, fa.lengths))}


def consequences(chr1, pos, ref, alt):
    return cq.variant_consequences(chr1["index"].near(pos - 1, pos - 1 + max(len(ref), 1)), pos - 1, ref, alt,
                                   chr1["letters"]["chrI"])


def translate(seq):
    return "".join(cq.translate(seq[i:i + 3]) for i in range(0, len(seq) - 2, 3))


def test_protein_changes_equal_translating_the_mutated_spliced_cds(chr1):
    """Both strands, with and without introns: every SNV of the CDS, against the spliced CDS translated anew."""
    letters = chr1["letters"]["chrI"]
    split_codons = 0
    for t in chr1["genes"]:
        pos = t.cds_positions()
        genomic = np.array(list(letters(int(pos.min()), int(pos.max()) + 1)))
        cds = "".join(genomic[pos - pos.min()])
        cds = cds if t.strand == "+" else cq.complement(cds)
        protein = translate(cds)
        assert protein[0] == "M" and protein[-1] == "*" and "*" not in protein[:-1]
        jumps = np.flatnonzero(np.abs(np.diff(pos)) > 1)
        for i, p in enumerate(pos):
            ref = genomic[p - pos.min()]
            for alt in "ACGT".replace(ref, ""):
                base = alt if t.strand == "+" else cq.complement(alt)
                mutated = translate(cds[:i] + base + cds[i + 1:])
                k = i // 3
                c = [x for x in consequences(chr1, int(p) + 1, ref, alt) if x.transcript_id == t.transcript_id][0]
                if k == 0:
                    assert "start_lost" in c.consequence
                elif protein[k] == "*":
                    assert ("stop_retained" if mutated[k] == "*" else "stop_lost") in c.consequence
                    assert c.protein_change == (f"{k + 1}*" if mutated[k] == "*" else f"{k + 1}*>{k + 1}{mutated[k]}")
                else:
                    want = ("synonymous" if mutated[k] == protein[k] else
                            "stop_gained" if mutated[k] == "*" else "missense")
                    assert want in c.consequence.split("&")
                    assert c.protein_change == (f"{k + 1}{protein[k]}" if want == "synonymous"
                                                else f"{k + 1}{protein[k]}>{k + 1}{mutated[k]}")
                    assert c.dna_change == f"{p + 1}{ref}>{alt}"
            if any(j // 3 == i // 3 and (j + 1) // 3 == i // 3 for j in jumps):
                split_codons += 1
    assert split_codons >= 3   # the bases of codons read across an intron were among them


def test_indels_and_variants_between_genes(chr1):
    letters = chr1["letters"]["chrI"]
    pau8 = [t for t in chr1["genes"] if t.gene_id == "YAL068C"][0]
    p = int(pau8.cds_positions()[30])      # 0-based, inside the CDS
    ref = letters(p - 1, p + 1)
    assert consequences(chr1, p, ref, ref[0])[0].consequence == "frameshift"
    ref3 = letters(p - 1, p + 3)
    assert consequences(chr1, p, ref3, ref3[0])[0].consequence == "inframe_deletion"
    base = letters(p, p + 1)
    assert consequences(chr1, p + 1, base, base + "GCA")[0].consequence == "inframe_insertion"
    assert consequences(chr1, p + 1, base, base + "GC")[0].consequence == "frameshift"
    # between PAU8 (ends at 2,169) and YAL067W-A (starts at 2,480): no transcript
    far = consequences(chr1, 2300, letters(2299, 2300), "A" if letters(2299, 2300) != "A" else "C")
    assert [c.consequence for c in far] == ["intergenic"] and far[0].bcsq() == "intergenic"
    # an intron base next to the exon on SNC1's 3' side (its donor site on '+')
    snc1 = [t for t in chr1["genes"] if t.gene_id == "YAL030W"][0]
    exon1_end = int(sorted(snc1.exons[:, 1])[0])
    donor = letters(exon1_end, exon1_end + 1)
    c = consequences(chr1, exon1_end + 1, donor, "A" if donor != "A" else "C")
    assert c[0].consequence == "splice_donor" and c[0].transcript_id == snc1.transcript_id


@pytest.mark.skipif(not shutil.which("bcftools"), reason="bcftools not installed (apt-get install bcftools)")
def test_consequences_equal_bcftools_csq(chr1, tmp_path):
    """Every SNV of the exons and 10 intron bases of four chrI genes (both strands, two spliced), plus indels in
    each CDS: the same consequence terms and protein changes as `bcftools csq -l` on the same FASTA and GFF3."""
    snvs = every_snv(chr1["genes"], chr1["letters"], intron_flank=10)
    letters = chr1["letters"]["chrI"]
    indels = []
    for t in chr1["genes"]:
        p = int(t.cds_positions()[40])
        ref = letters(p - 1, p + 1)
        indels += [("chrI", p, ref, ref[0]), ("chrI", p, ref[0], ref[0] + "TTT")]
    table = pd.concat([snvs, pd.DataFrame(indels, columns=snvs.columns)], ignore_index=True)
    vcf = tmp_path / "v.vcf"
    write_sites_vcf(table, str(vcf), chr1["lengths"])
    out = subprocess.run(["bcftools", "csq", "-l", "-f", str(YEAST_FASTA), "-g", str(YEAST_GFF3), str(vcf)],
                         check=True, capture_output=True, text=True).stdout
    wanted = {t.transcript_id for t in chr1["genes"]}
    compared = differences = 0
    for line in out.splitlines():
        if line.startswith("#"):
            continue
        f = line.split("\t")
        pos, ref, alt = int(f[1]), f[3], f[4]
        theirs: dict[str, set] = {}
        protein: dict[str, str] = {}
        for item in f[7].removeprefix("BCSQ=").split(","):
            x = item.split("|")
            if len(x) < 3:
                continue
            key = x[2] or f"gene:{x[1]}"
            theirs.setdefault(key, set()).update(x[0].split("&"))
            if len(x) > 5:
                protein[key] = x[5]
        for c in consequences(chr1, pos, ref, alt):
            if c.transcript_id not in wanted:
                continue
            terms = theirs.get(c.transcript_id, set()) | theirs.get(f"gene:{c.gene_name}", set())
            compared += 1
            mine = set(c.consequence.split("&"))
            if len(ref) != len(alt):          # indels: the class (bcftools adds its own protein notation)
                ok = mine == terms
            else:
                ok = mine == terms and (c.protein_change == protein.get(c.transcript_id, "")
                                        or ("start_lost" in mine and not c.protein_change))
            differences += not ok
            assert ok, f"chrI:{pos}{ref}>{alt} {c.transcript_id}: genoattn {c.bcsq()} vs bcftools {f[7]}"
    assert compared > 3 * 4000 and differences == 0


def test_llr_is_strand_symmetric_and_antisymmetric(root):
    """The LLR of an SNV equals that of the same SNV on the reverse-complemented sequence (forward and reverse
    passes swap), and swapping REF and ALT negates it (only the variant base is masked)."""
    import torch

    from genoattn.config import defaults
    from genoattn.effects import sequence as sq
    from genoattn.levels.nucleotide import level1_module
    from genoattn.model import build_module

    ckpt = str(DEMO / "checkpoints/level1/model.safetensors")
    cfg = defaults("levels.level1")
    module, _ = build_module(lambda: level1_module(cfg), "level1", ckpt)
    head, note = sq.load_head(ckpt, module.dim, "cpu")
    assert head is not None, note
    fa = pysam.FastaFile(str(YEAST_FASTA))
    seq = fa.fetch("chrI", 86500, 88500).upper()
    tokens = alphabet.encode(seq)[0]
    rc = alphabet.reverse_complement(tokens)
    starts = np.array([3, 700, 1000, 1995])
    ref = [seq[s] for s in starts]
    alt = ["A" if r != "A" else "G" for r in ref]
    with torch.no_grad():
        llr, lf, lr = sq.snv_llr(module, head, tokens, starts, ref, alt, module.window, "cpu")
        llr_rc, lf_rc, lr_rc = sq.snv_llr(module, head, rc, len(seq) - 1 - starts, [cq.complement(b) for b in ref],
                                          [cq.complement(b) for b in alt], module.window, "cpu")
        back, _, _ = sq.snv_llr(module, head, tokens, starts, alt, ref, module.window, "cpu")
    np.testing.assert_allclose(llr, llr_rc, atol=1e-4)
    np.testing.assert_allclose(lf, lr_rc, atol=1e-4)
    np.testing.assert_allclose(lr, lf_rc, atol=1e-4)
    np.testing.assert_allclose(back, -llr, atol=1e-5)
    assert np.all(np.abs(llr) > 0)


def test_bad_vcfs_name_the_record_and_the_fix(chr1, tmp_path):
    from genoattn.contigs import ContigMap
    from genoattn.effects.variants import VariantError, read_variants

    letters = chr1["letters"]
    cmap = ContigMap(["chrI", "chrII"], {}, "auto")
    header = "##fileformat=VCFv4.2\n##contig=<ID=chrI>\n##contig=<ID=scaffold_9>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    true_ref = letters["chrI"](999, 1000)
    wrong = "A" if true_ref != "A" else "C"
    bad = tmp_path / "wrong_ref.vcf"
    bad.write_text(header + f"chrI\t1000\trs1\t{wrong}\tG\t.\t.\t.\n")
    with pytest.raises(VariantError) as e:
        read_variants(str(bad), cmap, letters, {"chrI"}, 50)
    msg = str(e.value)
    assert str(bad) in msg and "record 1" in msg and "chrI:1000" in msg and true_ref in msg and "bcftools norm" in msg
    other = tmp_path / "contig.vcf"
    other.write_text(header + "scaffold_9\t10\t.\tA\tG\t.\t.\t.\n")
    with pytest.raises(VariantError, match="scaffold_9.*contig_aliases"):
        read_variants(str(other), cmap, letters, {"chrI"}, 50)
    mixed = tmp_path / "mixed.vcf"
    mixed.write_text(header + f"chrI\t1000\t.\t{true_ref}\t<DEL>,N,{wrong}\t.\t.\t.\n"
                     + f"chrI\t1000\t.\t{true_ref}{letters['chrI'](1000, 1002)}\t{wrong}GT\t.\t.\t.\n"
                     + f"chrII\t5\t.\t{pysam.FastaFile(str(YEAST_FASTA)).fetch('chrII', 4, 5)}\tA\t.\t.\t.\n")
    df, skipped = read_variants(str(mixed), cmap, letters, {"chrI"}, 50)
    assert len(df) == 1 and df["alt"][0] == wrong and df["allele"][0] == 3 and df["pos"][0] == 1000
    assert skipped["symbolic"] == 1 and skipped["non_acgt"] == 1 and skipped["excluded_contig"] == 1
    assert skipped["mnp_or_complex"] == 1
    only_symbolic = tmp_path / "symbolic.vcf"
    only_symbolic.write_text(header + f"chrI\t1000\t.\t{true_ref}\t<DEL>\t.\t.\t.\n")
    with pytest.raises(VariantError, match=r"no SNV or indel left to score \(1 records read; left out: 1 symbolic\)"):
        read_variants(str(only_symbolic), cmap, letters, {"chrI"}, 50)
    garbage = tmp_path / "garbage.vcf"
    garbage.write_text("this is not a VCF\n")
    with pytest.raises(VariantError, match="garbage.vcf.*bcftools view"):
        read_variants(str(garbage), cmap, letters, {"chrI"}, 50)


# -- the workflow ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def effects_run(tmp_path_factory, chr1):
    import yaml

    wd = tmp_path_factory.mktemp("effects")
    letters = chr1["letters"]["chrI"]
    rows = []
    for pos in (2000, 2166, 2483, 87385, 87390, 87396, 87501, 30000):   # PAU8, YAL067W-A, SNC1, between genes
        ref = letters(pos - 1, pos)
        rows += [("chrI", pos, ref, a) for a in "ACGT" if a != ref]
    ref = letters(2499, 2501)
    rows += [("chrI", 2500, ref, ref[0]), ("chrI", 2500, ref[0], ref[0] + "GGG")]
    write_sites_vcf(pd.DataFrame(rows, columns=["contig", "pos", "ref", "alt"]), str(wd / "v.vcf.gz"), chr1["lengths"])
    cfg = {"references": {"yeast": {"fasta": str(YEAST_FASTA), "annotation": str(YEAST_GTF), "hic": str(YEAST_COOL),
                                    "include": ["chrI"], "variants": "v.vcf.gz"}},
           "levels": {"level1": {"checkpoint": str(DEMO / "checkpoints/level1/model.safetensors")},
                      "level2": {"layers": 2, "checkpoint": str(DEMO / "checkpoints/level2/model.safetensors")},
                      "level5": {"block_size": 8, "local_window": 40}},
           "kernels": {"device": "cpu"}}
    (wd / "config.yaml").write_text(yaml.safe_dump(cfg))
    snakemake(wd, "effects")
    return wd, rows


@pytest.mark.workflow
def test_snakemake_effects_writes_the_table_and_an_indexed_vcf(effects_run):
    wd, rows = effects_run
    t = pd.read_parquet(wd / "results/yeast/effects/variants.parquet")
    assert len(t) == len(rows)
    by = {(p, a): r for p, a, r in zip(t["pos"], t["alt"], t.itertuples())}
    snv = t["kind"] == "snv"
    assert np.isfinite(t.loc[snv, "llr"]).all() and t.loc[~snv, "llr"].isna().all()
    assert set(t.loc[~snv, "consequence"]) == {"frameshift", "inframe_insertion"}
    assert (t["level1_window_change"] > 0).all() and (t["level4_bin_change"] > 0).all()
    assert (t["level5_bin_change"] > 0).all()
    coding = t["protein_change"] != ""
    assert (t.loc[coding & snv, "level2_codon_change"] > 0).all()
    assert (t.loc[coding & snv, "level3_gene_change"] > 0).all()
    between = t[t["pos"] == 30000]
    assert set(between["consequence"]) == {"intergenic"} and between["level2_codon_change"].isna().all()
    assert by[(2000, "A")].gene_name == "PAU8" and by[(2000, "A")].strand == "-"
    assert by[(2000, "A")].level4_top_bins.startswith("chrI:1-10000(")
    vcf = wd / "results/yeast/effects/variants.vcf.gz"
    assert (wd / "results/yeast/effects/variants.vcf.gz.csi").exists()
    with pysam.VariantFile(str(vcf)) as vf:
        recs = list(vf.fetch("chrI", 1999, 2000))          # through the index
        assert recs and all("GA_LLR" in r.info and "GA_CSQ" in r.info for r in recs)
    q = subprocess.run(["bcftools", "query", "-f", "%POS\t%ALT\t%GA_LLR\n", str(vcf)], capture_output=True,
                       text=True) if shutil.which("bcftools") else None
    if q is not None:
        got = {(int(p), a): float(v) for p, a, v in (x.split("\t") for x in q.stdout.splitlines()) if v != "."}
        for (p, a), v in got.items():
            assert abs(v - by[(p, a)].llr) < 1e-3 * max(1, abs(v))


@pytest.mark.workflow
def test_effects_recompute_the_stored_level1_windows(effects_run):
    """The reference window a variant's change is measured from is the level-1 store's own window."""
    import torch
    import xarray as xr

    from genoattn.config import defaults
    from genoattn.effects import sequence as sq
    from genoattn.levels.nucleotide import level1_module, strand_symmetric
    from genoattn.model import build_module

    wd, _ = effects_run
    t = pd.read_parquet(wd / "results/yeast/effects/variants.parquet")
    store = xr.open_zarr(wd / "results/yeast/level1/chrI.zarr")
    cfg = defaults("levels.level1")
    module, _ = build_module(lambda: level1_module(cfg), "level1", str(DEMO / "checkpoints/level1/model.safetensors"))
    tokens = alphabet.encode(pysam.FastaFile(str(YEAST_FASTA)).fetch("chrI").upper())[0]
    for w in sorted(set(t["level1_window"]))[:3]:
        win = np.zeros((1, 512), np.uint8)
        piece = tokens[w * 512:(w + 1) * 512]
        win[0, :len(piece)] = piece
        with torch.no_grad():
            emb = sq.window_embedding(strand_symmetric(module, torch.from_numpy(win)), win)[0].numpy()
        np.testing.assert_allclose(emb, store["window_embedding"].values[w], atol=2e-4)


@pytest.mark.workflow
def test_cli_effects_with_a_bad_vcf_writes_nothing(effects_run, tmp_path):
    wd, _ = effects_run
    fa = pysam.FastaFile(str(YEAST_FASTA))
    true_ref = fa.fetch("chrI", 4999, 5000).upper()
    bad = tmp_path / "bad.vcf"
    bad.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                   f"chrI\t5000\t.\t{'A' if true_ref != 'A' else 'C'}\tT\t.\t.\t.\n")
    out = tmp_path / "out" / "variants.parquet"
    proc = subprocess.run(["genoattn", "effects", "--config", str(wd / "config.yaml"), "--vcf", str(bad),
                           "--out", str(out)], capture_output=True, text=True, cwd=wd)
    assert proc.returncode != 0 and "chrI:5000" in proc.stderr and "bcftools norm" in proc.stderr
    assert not out.parent.exists() or not any(out.parent.iterdir())
    good = subprocess.run(["genoattn", "effects", "--config", str(wd / "config.yaml"), "--vcf", str(wd / "v.vcf.gz"),
                           "--out", str(out)], capture_output=True, text=True, cwd=wd)
    assert good.returncode == 0, good.stderr[-2000:]
    a = pd.read_parquet(out)
    b = pd.read_parquet(wd / "results/yeast/effects/variants.parquet")
    pd.testing.assert_frame_equal(a, b)
    assert (out.parent / "variants.vcf.gz").exists() and (out.parent / "variants.vcf.gz.csi").exists()


@pytest.mark.workflow
def test_report_figure_of_the_effects(effects_run, tmp_path):
    import sys

    sys.path.insert(0, str(ROOT / "workflow" / "scripts"))
    import plot_level

    wd, _ = effects_run
    out = tmp_path / "effects.png"
    plot_level.plot("effects", [str(wd / "results/yeast/effects/variants.parquet")], str(out))
    assert out.stat().st_size > 10_000
