# Hi-C contact graph (per contig: CSR + edge features + insulation/TAD boundaries) and the
# genome-wide trans-chromosomal links read by level 5. Only references with a `hic` key.


ruleorder: hic_trans > hic_graph


rule hic_graph:
    input:
        unpack(job_inputs("hic_graph")),
    output:
        directory(job_output("hic_graph")),
    log:
        L.path("{reference}", "logs", "hic", "{contig}.log"),
    benchmark:
        L.path("{reference}", "benchmarks", "hic", "{contig}.tsv")
    wildcard_constraints:
        contig="(?!trans$)[^/]+",
    conda:
        ENV_CPU
    container:
        IMAGE_CPU
    threads: J.spec("hic_graph").threads
    resources:
        mem_mb=job_mem_mb("hic_graph"),
    params:
        config=job_params("hic_graph"),
        derived=job_derived("hic_graph"),
    script:
        "../scripts/run_job.py"


rule hic_trans:
    input:
        unpack(job_inputs("hic_trans")),
    output:
        directory(job_output("hic_trans")),
    log:
        L.path("{reference}", "logs", "hic", "trans.log"),
    benchmark:
        L.path("{reference}", "benchmarks", "hic", "trans.tsv")
    conda:
        ENV_CPU
    container:
        IMAGE_CPU
    threads: J.spec("hic_trans").threads
    resources:
        mem_mb=job_mem_mb("hic_trans"),
    params:
        config=job_params("hic_trans"),
        derived=job_derived("hic_trans"),
    script:
        "../scripts/run_job.py"


rule hic:
    input:
        TARGETS["hic"],
