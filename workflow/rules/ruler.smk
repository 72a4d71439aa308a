# RULER (Tables 2, 4): prompts (CPU, tiktoken lengths) -> generate (GPU) -> score (CPU).


rule ruler_prompts:
    output:
        "results/prompts/ruler/{context}_{task}.jsonl",
    log:
        "logs/prompts/ruler/{context}_{task}.log",
    conda:
        "../../envs/longllada.yaml"
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        settings=fingerprints.unrecorded(study.benchmarks.get("ruler")),
        data=config.get("data", {}).get("ruler"),
        seed=study.seed,
        depends_on=depends_on("ruler:prompts"),
    script:
        "../../scripts/pending.py"


rule ruler_generate:
    input:
        prompts="results/prompts/ruler/{context}_{task}.jsonl",
        checkpoint=checkpoint_of("ruler"),
    output:
        "results/ruler/{model}/{setting}/{context}_{task}.predictions.jsonl",
    log:
        "logs/ruler/{model}/{setting}/{context}_{task}.generate.log",
    benchmark:
        "benchmarks/ruler/{model}/{setting}/{context}_{task}.tsv"
    conda:
        "../../envs/longllada.yaml"
    resources:
        gpu=1,
        mem_mb=64000,
        runtime=gpu_runtime("ruler", lambda w: f"{w.context}_{w.task}"),
    params:
        run=run_of("ruler"),
        settings=fingerprints.unrecorded(study.benchmarks.get("ruler")),
        seed=study.seed,
        depends_on=depends_on("ruler:generate"),
    script:
        "../../scripts/pending.py"


rule ruler_score:
    input:
        lambda w: study.prediction_files(study.run_for("ruler", w.model, w.setting)),
    output:
        "results/ruler/{model}/{setting}/scores.json",
    log:
        "logs/ruler/{model}/{setting}/score.log",
    conda:
        "../../envs/longllada.yaml"
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        run=run_of("ruler"),
        settings=fingerprints.unrecorded(study.benchmarks.get("ruler")),
        depends_on=depends_on("ruler:score"),
    script:
        "../../scripts/pending.py"
