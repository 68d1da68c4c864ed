"""Regenerate the numbers of benchmarks/RESULTS.md from the JSON files they come from.

    python benchmarks/render_results.py            # rewrite every generated block in place
    python benchmarks/render_results.py --check    # exit 1 if a block differs from its JSON (tests run this)

A generated block sits between two HTML comments::

    <!-- generated: NAME from benchmarks/results/FILE.json (benchmarks/render_results.py) -->
    ...
    <!-- end generated: NAME -->

Everything inside (tables and the sentences that quote numbers: ratios, extrapolations, the load the
run saw) is written here from the JSON, so a rerun of a benchmark followed by this script updates the
prose with the table. Text outside the blocks interprets; it should not repeat a measured number.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS_MD = HERE / "RESULTS.md"
README = HERE.parent / "README.md"
BLOCK = re.compile(r"(<!-- generated: (?P<name>[\w-]+) from (?P<src>\S+) \(benchmarks/render_results\.py\) -->\n)"
                   r"(?P<body>.*?)(<!-- end generated: (?P=name) -->)", re.S)
GRCH38_CHR1_BINS = 24_896   # chr1 at 10 kb
HUMAN_BINS_10KB = 309_000


# -- formatting ---------------------------------------------------------------------------------------
def n(x: float) -> str:
    return f"{x:,.0f}"


def secs(x: float) -> str:
    return f"{x * 1e3:.0f} ms" if x < 1 else f"{x:.2f} s" if x < 10 else f"{x:.1f} s" if x < 100 else f"{x:,.0f} s"


def mib(b: float) -> str:
    return f"{b / 2**30:.1f} GiB" if b >= 2**30 else f"{b / 2**20:.0f} MiB"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}x"


def load_line(meta: dict) -> str:
    la = meta.get("load_average_1min")
    if not la:
        return "Load average not recorded (run before the benchmarks recorded it)."
    return (f"1-minute load average {la['before']} before and {la['after']} after the run "
            f"({meta.get('cpu_count', '?')} CPUs; {meta.get('time', '')}).")


def table(head: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


# -- level 1 (benchmarks/level1.py) -------------------------------------------------------------------------
def level1(d: dict) -> str:
    meta = d["meta"]
    mod = d["throughput"][0]["module"]
    lines = [f"`{meta['command']}` — {load_line(meta)} Module: the schema's level-1 defaults (dim {mod['dim']}, "
             f"{mod['heads']} heads, {mod['window']}-bp windows, {mod['layers']} attention blocks after a "
             f"{mod['conv_kernel']}-bp convolution), seeded weights, {d['threads']} threads, batches of 64 windows "
             f"of the real chrIV.", "",
             table(["path", "reverse-complement pass", "windows/s", "bp/s"],
                   [[r["path"], "yes" if r["reverse_complement"] else "no", f"{r['windows_per_s']:,.1f}",
                     n(r["bp_per_s"])] for r in d["throughput"]]), ""]
    by = {(r["path"].split()[0], r["reverse_complement"]): r for r in d["throughput"]}
    ours, naive = by.get(("ours", True)), by.get(("naive", True))
    if ours and naive:
        lines.append(f"- With the reverse-complement pass (the default) our attention path makes the whole module "
                     f"{ratio(ours['bp_per_s'], naive['bp_per_s'])} faster than the naive one; at "
                     f"{n(ours['bp_per_s'])} bp/s the 12.07 Mbp demo genome is ≈ {12.07e6 / ours['bp_per_s']:.0f} s "
                     f"of level-1 compute on these threads and a 3.1 Gbp human genome ≈ "
                     f"{3.1e9 / ours['bp_per_s'] / 3600:.0f} CPU-hours (hence GPUs on a cluster).")
    if d.get("memory"):
        lines += ["", "Peak resident memory, each run in its own process (VmHWM):", "",
                  table(["run", "peak RSS", "time"], [[r["what"], f"{r['peak_rss_mb']:,.0f} MB", f"{r['seconds']} s"]
                                                       for r in d["memory"]])]
    return "\n".join(lines)


# -- levels 2-3 (benchmarks/levels23.py) --------------------------------------------------------------------
def levels23(d: dict) -> str:
    meta = d.get("meta", {})
    sm = d["summary"]
    lines = [f"`{meta.get('command', 'python benchmarks/levels23.py')}` — {load_line(meta)}", "",
             table(["contig", "transcripts", "exons", "codon tokens (3 frames)", "longest exon (tokens)",
                    "L2 packed", "L2 one call per exon", "L3 packed", "L3 one call per transcript", "L2 run()",
                    "L3 run()"],
                   [[r["contig"], n(r["transcripts"]), n(r["exons"]), n(r["codons"]), n(r["max_codons_per_exon"]),
                     secs(r["l2_packed_s"]), secs(r["l2_per_exon_s"]), secs(r["l3_packed_s"]),
                     secs(r["l3_per_transcript_s"]), secs(r["l2_run_s"]), secs(r["l3_run_s"])] for r in d["rows"]]),
             "",
             table(["throughput (all contigs above)", "packed", "one call each", "speed-up"],
                   [["level 2, codon tokens/s", n(sm["codons_per_s_packed"]), n(sm["codons_per_s_per_exon_calls"]),
                     ratio(sm["codons_per_s_packed"], sm["codons_per_s_per_exon_calls"])],
                    ["level 3, exons/s", f"{sm['exons_per_s_packed']:.1f}", f"{sm['exons_per_s_per_transcript_calls']:.1f}",
                     ratio(sm["exons_per_s_packed"], sm["exons_per_s_per_transcript_calls"])],
                    ["end to end `run()` (store read/write included)", f"{n(sm['codons_per_s_run'])} codons/s",
                     f"{sm['exons_per_s_run']:.1f} exons/s", ""]]), "",
             f"- Extrapolated to the demo genome ({n(d['genome_codons'])} codon tokens, "
             f"{n(d['genome_exons'])} exons, {n(d['genome_transcripts'])} canonical transcripts) at the `run()` rates: "
             f"level 2 ≈ {sm['genome_level2_s_extrapolated'] / 60:.0f} min and level 3 ≈ "
             f"{sm['genome_level3_s_extrapolated'] / 60:.0f} min of {d['threads']}-thread time, spread over the "
             f"per-contig jobs."]
    return "\n".join(lines)


# -- Hi-C graph build (benchmarks/hic_graph.py) -------------------------------------------------------------
def hic_graph(d: dict) -> str:
    meta = d.get("meta", {})
    c = d["cooler"]
    lines = [f"`{meta.get('command', 'python benchmarks/hic_graph.py')}` — {load_line(meta)} Synthetic cooler: "
             f"{n(c['n_bins'])} bins over {c['n_chroms']} chromosomes (largest {n(c['largest_chrom_bins'])} bins), "
             f"{c['nnz'] / 1e6:.1f} M pixels, made in {c['seconds']:.0f} s; sha256 of the "
             f"{d['sha256_cooler']['bytes'] / 1e6:.0f} MB file {d['sha256_cooler']['seconds']:.1f} s (timed apart).", ""]
    rows = []
    for key, label in (("largest_chromosome", "largest chromosome (one `hic_graph` job)"),
                       ("all_chromosomes", "all chromosomes in sequence (= the per-contig jobs)"),
                       ("trans", "trans links, genome-wide (`hic_trans` job)")):
        if key in d:
            r = d[key]
            edges = (f"{n(r['edges'])} links" if key == "trans" else
                     f"{r['edges'] / 1e6:.2f} M ({r['top'] / 1e6:.2f} M top O/E pairs)")
            rows.append([label, f"{r['pixels'] / 1e6:.1f} M", edges, f"{r['seconds']:.1f}", f"{r['cpu_seconds']:.1f}",
                         f"{r['pixels_per_cpu_s'] / 1e6:.2f} M",
                         "—" if key == "trans" else f"{r['edges_per_cpu_s'] / 1e6:.2f} M",
                         f"{r['peak_rss_mb'] / 1024:.2f} GB"])
    lines.append(table(["run", "pixels read", "directed edges", "wall s", "CPU s", "pixels / CPU s", "edges / CPU s",
                        "peak RSS"], rows))
    big = d["largest_chromosome"]
    rate = d.get("all_chromosomes", big)["pixels_per_cpu_s"]
    per_edge = (big["peak_rss_mb"] - big["baseline_rss_mb"]) * 2**20 / big["edges"]
    lines += ["", f"- Peak memory of the largest chromosome's job: {per_edge:.0f} B per directed edge above the "
              f"{big['baseline_rss_mb']:.0f} MB after imports (`chunk_pixels` {n(d['chunk_pixels'])}). At "
              f"{rate / 1e6:.2f} M pixels per CPU-second a real human 10 kb cooler of ~10⁹ "
              f"pixels is ≈ {1e9 / rate / 60:.0f} CPU-minutes spread "
              f"over the per-contig jobs."]
    return "\n".join(lines)


# -- annotation parsing (benchmarks/annotation.py) -----------------------------------------------------------
def annotation(d: dict) -> str:
    meta = d["meta"]
    syn = d["synthetic"]
    rows = [[f"{r['file']} (real)", n(r["input_rows"]), f"{r['cpu_s']:.2f} s", f"{1e6 * r['cpu_s'] / r['input_rows']:.1f} µs",
             "—"] for r in d["real"]]
    rows.append([f"synthetic GENCODE-like GTF (real yeast rows ×{d['copies']}, {syn['bytes'] / 1e6:.0f} MB)",
                 n(syn["input_rows"]), f"{syn['cpu_s']:.2f} s", f"{1e6 * syn['cpu_s'] / syn['input_rows']:.1f} µs",
                 f"{syn['peak_rss_growth_mib']:.0f} MiB ({syn['peak_rss_growth_mib'] * 1024 / syn['input_rows']:.2f} KB/row)"])
    per_row = syn["cpu_s"] / syn["input_rows"]
    mem_row = syn["peak_rss_growth_mib"] * 2**20 / syn["input_rows"]
    return "\n".join([f"`{meta['command']}` — {load_line(meta)}", "",
                      table(["input", "rows", "CPU time (best of 3; synthetic: 1)", "per row", "peak RSS growth"], rows),
                      "", f"- Extrapolated to a human GENCODE GTF (≈ 3.4 M rows): ≈ {3.4e6 * per_row:.0f} s CPU and "
                      f"≈ {3.4e6 * mem_row / 2**30:.1f} GiB peak memory in one job."])


# -- cohort (benchmarks/cohort.py) ---------------------------------------------------------------------------
COHORT_ROWS = {"convert_phased_all": "VCF → genotypes.zarr, phased (fast GT path)",
               "convert_phased_third": "same, a third of the records (`20:1000000-2000000`)",
               "convert_unphased_all": "VCF → genotypes.zarr, unphased (GT and GT:PS mixed: general parser)",
               "convert_wide_synthetic": "SYNTHETIC wide VCF → genotypes.zarr",
               "level6_all": "level 6, default model", "level6_half": "level 6, half the variants"}


def cohort(d: dict) -> str:
    meta = d.get("meta", {})
    rows = []
    for key, label in COHORT_ROWS.items():
        r = d[key]
        if key.startswith("convert"):
            rows.append([label, f"{n(r['records'])} read, {n(r['kept'])} kept", n(r["samples"]), secs(r["seconds"]),
                         secs(r["cpu_seconds"]), f"{r['genotypes_per_cpu_s'] / 1e6:.1f} M genotypes/s",
                         f"{r['peak_rss_mb']:.0f} MB"])
        else:
            rows.append([f"{label} ({r['parameters'] / 1e6:.1f} M params)", n(r["variants"]), f"{r['individuals']} individuals",
                         secs(r["seconds"]), secs(r["cpu_seconds"]),
                         f"{r['cpu_us_per_individual_variant']:.0f} CPU-µs per individual-variant",
                         f"{r['peak_rss_mb'] / 1024:.1f} GB"])
    x = d["extrapolation_500k_x_1m"]
    a, h = d["level6_all"], d["level6_half"]
    lines = [f"`{meta.get('command', 'python benchmarks/cohort.py')}` — {load_line(meta)}", "",
             table(["what", "records / variants", "samples", "wall", "CPU", "throughput (per CPU second)", "peak RSS"],
                   rows), "",
             f"- Conversion memory: {d['convert_phased_all']['peak_rss_mb']:.0f} MB for all records vs "
             f"{d['convert_phased_third']['peak_rss_mb']:.0f} MB for a third, "
             f"{d['convert_wide_synthetic']['peak_rss_mb']:.0f} MB at {n(d['convert_wide_synthetic']['samples'])} samples.",
             f"- Level 6 is linear in the variants: {a['cpu_us_per_individual_variant']:.0f} CPU-µs per individual-variant "
             f"at {n(a['variants'])} variants, {h['cpu_us_per_individual_variant']:.0f} at {n(h['variants'])}.", "",
             "Extrapolation to 500 K individuals × 1 M variants:", "",
             table(["step", "estimate"],
                   [["conversion, at the wide VCF's genotypes per CPU-second", f"≈ {x['conversion_core_hours']:.0f} core-hours"],
                    ["`call_genotype` + mask, uncompressed", f"{x['call_genotype_bytes_uncompressed'] / 1e12:.0f} TB + "
                     f"{x['call_genotype_bytes_uncompressed'] / 1e12:.0f} TB (int8 alleles, bool mask)"],
                    ["level 6 on CPU", f"≈ {x['level6_cpu_seconds_per_individual']:.0f} CPU-s per individual → ≈ "
                     f"{n(x['level6_core_hours'])} core-hours"],
                    ["level 6 activations", f"≈ {x['level6_activation_gb_per_individual']:.0f} GB per individual at "
                     "1 M variants (float32, batch 1)"]])]
    return "\n".join(lines)


# -- levels 4-5 (benchmarks/levels45.py) -----------------------------------------------------------------
L4_PATHS = {"layer": "ours, GAT layer (projection, attention with edge term, bias)",
            "pyg": "`torch_geometric` `GATConv`, same weights, same inputs",
            "kernel": "ours, attention kernel alone (projected inputs)",
            "module": "ours, whole level-4 module (edge encoder, GAT layer, MLP) from raw inputs"}


def levels45_level4(d: dict) -> str:
    rows = [r for r in d["rows"] if r.get("level") == 4 and "seconds" in r]
    meta = d["meta"]
    lines = [f"`{meta['command']}` — {load_line(meta)} Every path of a graph runs in its own process on "
             f"{meta['threads']} thread(s), best of {meta['repeat']}.", ""]
    body = []
    for r in sorted(rows, key=lambda r: (r["bins"], list(L4_PATHS).index(r["path"]))):
        body.append([L4_PATHS[r["path"]], n(r["bins"]), f"{r['edges'] / 1e6:.2f} M", secs(r["seconds"]),
                     n(r["edges_per_s"]), f"{r['peak_above_inputs_mb']:,.0f} MB", n(r["bytes_per_edge"])])
    lines.append(table(["path", "bins", "edges", "time", "edges/s", "peak above inputs", "bytes/edge"], body))
    lines.append("")
    by = {(r["bins"], r["path"]): r for r in rows}
    for bins in sorted({r["bins"] for r in rows}):
        ours, pyg = by.get((bins, "layer")), by.get((bins, "pyg"))
        if ours and pyg:
            faster = ours["seconds"] < pyg["seconds"]
            lines.append(f"- {n(bins)} bins ({pyg['edges'] / 1e6:.2f} M edges), the same layer side by side: ours "
                         f"{secs(ours['seconds'])}, GATConv {secs(pyg['seconds'])} — ours "
                         f"{ratio(pyg['seconds'], ours['seconds']) + ' faster' if faster else ratio(ours['seconds'], pyg['seconds']) + ' slower'}"
                         f"; memory above the inputs {n(ours['bytes_per_edge'])} vs {n(pyg['bytes_per_edge'])} "
                         f"B/edge ({100 * ours['bytes_per_edge'] / pyg['bytes_per_edge']:.0f} %); outputs equal to "
                         f"{pyg['max_abs_diff_vs_ours']:.1e} (max abs difference).")
    mods = sorted((r for r in rows if r["path"] == "module"), key=lambda r: r["edges"])
    if len(mods) >= 2:
        a, b = mods[0], mods[-1]
        marginal = (b["peak_above_inputs_mb"] - a["peak_above_inputs_mb"]) * 2**20 / (b["edges"] - a["edges"])
        e_chr1 = meta["l4_density"] * GRCH38_CHR1_BINS ** 2
        lines.append(f"- Whole module, memory: {n(marginal)} B per additional edge between {a['edges'] / 1e6:.2f} M "
                     f"and {b['edges'] / 1e6:.2f} M edges; speed at the largest graph {n(b['edges_per_s'])} edges/s. "
                     f"Extrapolated to chr1 at 10 kb and the same density ({e_chr1 / 1e6:.1f} M edges): "
                     f"{secs(e_chr1 / b['edges_per_s'])} on these threads, "
                     f"~{(b['peak_above_inputs_mb'] * 2**20 + marginal * (e_chr1 - b['edges'])) / 2**30:.1f} GiB "
                     f"above the inputs.")
    return "\n".join(lines)


def levels45_level5(d: dict) -> str:
    rows = sorted((r for r in d["rows"] if r.get("level") == 5), key=lambda r: -r["bins"])
    body = []
    for r in rows:
        if "forward_s" in r:
            body.append([n(r["bins"]), n(r["tokens_padded"]), n(r["blocks"]), n(r["nnz_blocks"]),
                         f"{100 * r['density']:.2f} %", secs(r["layout_build_s"]), secs(r["forward_s"]),
                         n(r["bins_per_s"]), secs(r["attention_kernel_s"]), f"{r['peak_above_inputs_mb']:,.0f} MB"])
        else:
            body.append([n(r["bins"]), n(r["tokens_padded"]), n(r["blocks"]), n(r["nnz_blocks"]),
                         f"{100 * r['density']:.2f} %", secs(r["layout_build_s"]), "not run here", "", "", ""])
    lines = [table(["bins", "padded tokens", "blocks", "nnz blocks", "block density", "layout build", "forward",
                    "bins/s", "attention kernel alone", "peak above inputs"], body), ""]
    fw = [r for r in rows if "forward_s" in r]
    if fw:
        big = max(fw, key=lambda r: r["bins"])
        lines.append(f"- Linear in the bins (fixed key blocks per query block): at {n(big['bins_per_s'])} bins/s "
                     f"a human genome at 10 kb ({n(HUMAN_BINS_10KB)} bins) takes ≈ "
                     f"{HUMAN_BINS_10KB / big['bins_per_s']:.0f} s on these threads and ≈ "
                     f"{big['peak_above_inputs_mb'] * HUMAN_BINS_10KB / big['bins'] / 1024:.1f} GB above its inputs.")
    return "\n".join(lines)


# -- kernels (benchmarks/kernels.py) -----------------------------------------------------------------------
KERNEL_IMPL = {"ours": "**ours**", "ours_tiled": "ours, hand-tiled queries", "sdpa": "torch SDPA, bool mask",
               "flex": "FlexAttention (torch.compile)", "naive": "naive materialised (reference)",
               "sdpa_loop": "one SDPA call per sequence", "sdpa_padded": "all padded + mask",
               "sdpa_masked": "dense SDPA + [N, N] mask", "pyg": "PyG GATConv (same layer)"}
PEERS = {"dense": "sdpa", "varlen": "sdpa_loop", "block_sparse": "flex", "local_global": "flex", "graph": "pyg"}


def _kernel_rows(d: dict):
    for r in d["rows"]:
        if r.get("status") != "ok":
            yield r, [r["pattern"], KERNEL_IMPL.get(r["impl"], r["impl"]), r.get("status", "?"), "", "", "",
                      r.get("note", "")]
            continue
        unit = f"{r['edges_per_s'] / 1e3:,.0f} K edges/s" if r.get("edges_per_s") else f"{r['tokens_per_s'] / 1e3:,.1f} K tok/s"
        mem = mib(r["peak_bytes"]) + (f" ({n(r['bytes_per_edge'])} B/edge)" if r.get("bytes_per_edge") else "")
        yield r, [r["pattern"], KERNEL_IMPL.get(r["impl"], r["impl"]), secs(r["seconds"]), secs(r["cpu_seconds"]),
                  unit, mem, r.get("note", "")]


def kernels_table(d: dict) -> str:
    meta = d["meta"]
    lines = [f"`{meta['command']}` — {load_line(meta)} OMP_NUM_THREADS={meta.get('omp_num_threads')}, "
             f"{meta['dtype']}, median of {meta['repeat']}{', forward + backward' if meta['backward'] else ', forward'}.",
             "", table(["pattern", "implementation", "wall", "CPU", "throughput (wall)", "peak memory", "note"],
                       [row for _, row in _kernel_rows(d)]), ""]
    ok = {(r["pattern"], r["impl"]): r for r in d["rows"] if r.get("status") == "ok"}
    for pattern, peer in PEERS.items():
        ours, other = ok.get((pattern, "ours")), ok.get((pattern, peer))
        if ours and other:
            t = other["cpu_seconds"] / ours["cpu_seconds"]
            lines.append(f"- {pattern}: ours {secs(ours['cpu_seconds'])} vs {KERNEL_IMPL[peer]} "
                         f"{secs(other['cpu_seconds'])} CPU — {'%.2fx the speed' % t}; peak memory "
                         f"{mib(ours['peak_bytes'])} vs {mib(other['peak_bytes'])}.")
    return "\n".join(lines)


# -- the README demo (benchmarks/demo_time.py) -----------------------------------------------------------
def demo_time(d: dict) -> str:
    loads = d["load_average_1min"]["per_minute"]
    lines = [f"`{d['command']}` from a fresh clone of {d['commit'][:10]} on {d['date']} "
             f"({d['machine']['cpus']} CPUs): **{d['wall_s'] / 60:.0f} min** in all, {d['jobs']} Snakemake jobs "
             f"({d['job_seconds_sum'] / 60:.0f} job-minutes), {d['results_bytes'] / 1e9:.1f} GB under `results/`, "
             f"largest job peak RSS {d['peak_rss_mb_max'] / 1024:.1f} GB. 1-minute load average sampled each "
             f"minute: median {sorted(loads)[len(loads) // 2] if loads else 'n/a'}, max "
             f"{max(loads) if loads else 'n/a'} (2 is the two cores busy with the demo itself).", "",
             table(["step", "wall"], [[f"`{s['step']}`", f"{s['s'] / 60:.1f} min"] for s in d["steps"]]), "",
             "Slowest jobs (Snakemake `benchmark:` files):", "",
             table(["job", "seconds", "peak RSS"], [[f"`{j['job']}`", n(j["s"]),
                                                     f"{(j['max_rss_mb'] or 0) / 1024:.1f} GB"]
                                                    for j in d["slowest_jobs"]])]
    return "\n".join(lines)


def readme_demo_time(d: dict) -> str:
    install = sum(st["s"] for st in d["steps"][:-1])
    return (f"{d['wall_s'] / 60:.0f} min, measured on {d['date'][:10]} by `python benchmarks/demo_time.py` from a "
            f"fresh clone ({install / 60:.0f} min of installs, {d['steps'][-1]['s'] / 60:.0f} min for the "
            f"workflow's {d['jobs']} jobs); it writes {d['results_bytes'] / 1e9:.1f} GB under `results/`.")


RENDERERS = {"level1": level1, "levels23": levels23, "hic-graph": hic_graph, "annotation": annotation,
             "cohort": cohort, "levels45-level4": levels45_level4, "levels45-level5": levels45_level5,
             "kernels-forward": kernels_table, "kernels-backward": kernels_table, "demo-time": demo_time,
             "readme-demo-time": readme_demo_time}


def render(text: str, root: Path) -> tuple[str, list[str]]:
    """``text`` with every generated block rewritten; and the names of the blocks that changed."""
    changed = []

    def sub(m: re.Match) -> str:
        name, src = m["name"], m["src"]
        if name not in RENDERERS:
            raise SystemExit(f"unknown generated block {name!r}; known: {', '.join(RENDERERS)}")
        path = root / src
        if not path.exists():
            raise SystemExit(f"generated block {name!r}: {src} does not exist (run its benchmark first)")
        body = RENDERERS[name](json.loads(path.read_text())).rstrip("\n") + "\n"
        if body != m["body"]:
            changed.append(name)
        return m.group(1) + body + m.group(5)

    return BLOCK.sub(sub, text), changed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="only report blocks that differ from their JSON")
    args = ap.parse_args(argv)
    stale = []
    for doc in (RESULTS_MD, README):
        new, changed = render(doc.read_text(), HERE.parent)
        stale += [f"{doc.name}: {c}" for c in changed]
        if changed and not args.check:
            doc.write_text(new)
    if args.check and stale:
        print("out of date with their JSON (run python benchmarks/render_results.py): " + "; ".join(stale))
        return 1
    print(("updated: " + "; ".join(stale)) if stale else "every generated block matches its JSON")
    return 0


if __name__ == "__main__":
    sys.exit(main())
