# LongBench (Tables 1, 3): prompts truncated in the model's own tokens -> generate -> score.


rule longbench_prompts:
    input:
        tokenizer=lambda w: study.checkpoint(w.model),
    output:
        "results/prompts/longbench/{model}/{context}_{subset}.jsonl",
    log:
        "logs/prompts/longbench/{model}/{context}_{subset}.log",
    conda:
        "../../envs/longllada.yaml"
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        settings=fingerprints.unrecorded(study.benchmarks.get("longbench")),
        data=config.get("data", {}).get("longbench"),
        seed=study.seed,
        depends_on=depends_on("longbench:prompts"),
    script:
        "../../scripts/pending.py"


rule longbench_generate:
    input:
        prompts="results/prompts/longbench/{model}/{context}_{subset}.jsonl",
        checkpoint=checkpoint_of("longbench"),
    output:
        "results/longbench/{model}/{setting}/{context}_{subset}.predictions.jsonl",
    log:
        "logs/longbench/{model}/{setting}/{context}_{subset}.generate.log",
    benchmark:
        "benchmarks/longbench/{model}/{setting}/{context}_{subset}.tsv"
    conda:
        "../../envs/longllada.yaml"
    resources:
        gpu=1,
        mem_mb=64000,
        runtime=gpu_runtime("longbench", lambda w: f"{w.context}_{w.subset}"),
    params:
        run=run_of("longbench"),
        settings=fingerprints.unrecorded(study.benchmarks.get("longbench")),
        seed=study.seed,
        depends_on=depends_on("longbench:generate"),
    script:
        "../../scripts/pending.py"


rule longbench_score:
    input:
        lambda w: study.prediction_files(study.run_for("longbench", w.model, w.setting)),
    output:
        "results/longbench/{model}/{setting}/scores.json",
    log:
        "logs/longbench/{model}/{setting}/score.log",
    conda:
        "../../envs/longllada.yaml"
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        run=run_of("longbench"),
        settings=fingerprints.unrecorded(study.benchmarks.get("longbench")),
        depends_on=depends_on("longbench:score"),
    script:
        "../../scripts/pending.py"
