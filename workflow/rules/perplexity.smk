# Figure 1a (perplexity vs context) and Figure 5 (Q/K states for t-SNE): one document, GPU.


rule perplexity:
    input:
        checkpoint=checkpoint_of("ppl"),
    output:
        "results/ppl/{model}/{setting}/{unit}.json",
    log:
        "logs/ppl/{model}/{setting}/{unit}.log",
    benchmark:
        "benchmarks/ppl/{model}/{setting}/{unit}.tsv"
    conda:
        "../../envs/longllada.yaml"
    resources:
        gpu=1,
        mem_mb=64000,
        runtime=gpu_runtime("ppl", lambda w: w.unit),
    params:
        run=run_of("ppl"),
        settings=study.benchmarks.get("ppl"),
        document=config.get("data", {}).get("ppl_document"),
        seed=study.seed,
    script:
        "../../scripts/pending.py"


rule qk_states:
    input:
        checkpoint=checkpoint_of("qk_states"),
    output:
        "results/qk_states/{model}/{setting}/{unit}.npz",
    log:
        "logs/qk_states/{model}/{setting}/{unit}.log",
    benchmark:
        "benchmarks/qk_states/{model}/{setting}/{unit}.tsv"
    conda:
        "../../envs/longllada.yaml"
    resources:
        gpu=1,
        mem_mb=64000,
        runtime=gpu_runtime("qk_states", lambda w: w.unit),
    params:
        run=run_of("qk_states"),
        settings=study.benchmarks.get("qk_states"),
        document=config.get("data", {}).get("ppl_document"),
        seed=study.seed,
    script:
        "../../scripts/pending.py"
