# Training stage: one job per trainable level and reference with `held_out` contigs (levels 1-2; levels
# 4-5, held-out Hi-C contacts, also need `hic`, level 5 `centromeres`), or cohort with `held_out`
# individuals (level 6)
# (genoattn/training/). A level loads its training output with `levels.<level>.checkpoint: train`;
# the checkpoint is then an input of the level's rules, so retraining reruns that level and those
# above. A killed training job resumes from its state.pt (beside the outputs) when rerun.


rule train_level1:
    input:
        unpack(job_inputs("train_level1")),
    output:
        model=job_output("train_level1"),
        metrics=job_output("train_level1", "model.json"),
    log:
        L.path("{reference}", "logs", "train", "level1.log"),
    benchmark:
        L.path("{reference}", "benchmarks", "train", "level1.tsv")
    conda:
        ENV_GPU
    container:
        IMAGE_GPU
    threads: J.spec("train_level1").threads
    resources:
        mem_mb=job_mem_mb("train_level1"),
        gpu=config["training"]["devices"],
    params:
        config=job_params("train_level1"),
        derived=job_derived("train_level1"),
    script:
        "../scripts/run_job.py"


rule train_level2:
    input:
        unpack(job_inputs("train_level2")),
    output:
        model=job_output("train_level2"),
        metrics=job_output("train_level2", "model.json"),
    log:
        L.path("{reference}", "logs", "train", "level2.log"),
    benchmark:
        L.path("{reference}", "benchmarks", "train", "level2.tsv")
    conda:
        ENV_GPU
    container:
        IMAGE_GPU
    threads: J.spec("train_level2").threads
    resources:
        mem_mb=job_mem_mb("train_level2"),
        gpu=config["training"]["devices"],
    params:
        config=job_params("train_level2"),
        derived=job_derived("train_level2"),
    script:
        "../scripts/run_job.py"


rule train_level4:
    input:
        unpack(job_inputs("train_level4")),
    output:
        model=job_output("train_level4"),
        metrics=job_output("train_level4", "model.json"),
        pairs=job_output("train_level4", "heldout_pairs.parquet"),
    log:
        L.path("{reference}", "logs", "train", "level4.log"),
    benchmark:
        L.path("{reference}", "benchmarks", "train", "level4.tsv")
    conda:
        ENV_GPU
    container:
        IMAGE_GPU
    threads: J.spec("train_level4").threads
    resources:
        mem_mb=job_mem_mb("train_level4"),
        gpu=config["training"]["devices"],
    params:
        config=job_params("train_level4"),
        derived=job_derived("train_level4"),
    script:
        "../scripts/run_job.py"


rule train_level5:
    input:
        unpack(job_inputs("train_level5")),
    output:
        model=job_output("train_level5"),
        metrics=job_output("train_level5", "model.json"),
    log:
        L.path("{reference}", "logs", "train", "level5.log"),
    benchmark:
        L.path("{reference}", "benchmarks", "train", "level5.tsv")
    conda:
        ENV_GPU
    container:
        IMAGE_GPU
    threads: J.spec("train_level5").threads
    resources:
        mem_mb=job_mem_mb("train_level5"),
        gpu=config["training"]["devices"],
    params:
        config=job_params("train_level5"),
        derived=job_derived("train_level5"),
    script:
        "../scripts/run_job.py"


rule train_level6:
    input:
        unpack(job_inputs("train_level6")),
    output:
        model=job_output("train_level6"),
        metrics=job_output("train_level6", "model.json"),
    log:
        L.path("{cohort}", "logs", "train", "level6.log"),
    benchmark:
        L.path("{cohort}", "benchmarks", "train", "level6.tsv")
    conda:
        ENV_GPU
    container:
        IMAGE_GPU
    threads: J.spec("train_level6").threads
    resources:
        mem_mb=job_mem_mb("train_level6"),
        gpu=config["training"]["devices"],
    params:
        config=job_params("train_level6"),
        derived=job_derived("train_level6"),
    script:
        "../scripts/run_job.py"


rule train:
    input:
        TARGETS["train"],
