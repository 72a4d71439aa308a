# NeedleBench NIAH (Figures 1b, 2, 3, 6-11): prompts (CPU) -> generate (GPU) -> score (CPU).


rule niah_prompts:
    output:
        "results/prompts/niah/len{length}.jsonl",
    log:
        "logs/prompts/niah/len{length}.log",
    conda:
        "../../envs/longllada.yaml"
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        settings=fingerprints.unrecorded(study.benchmarks.get("niah")),
        data=config.get("data", {}).get("needlebench"),
        seed=study.seed,
        depends_on=depends_on("niah:prompts"),
    script:
        "../../scripts/pending.py"


rule niah_generate:
    input:
        prompts="results/prompts/niah/len{length}.jsonl",
        checkpoint=checkpoint_of("niah"),
    output:
        "results/niah/{model}/{setting}/len{length}.predictions.jsonl",
    log:
        "logs/niah/{model}/{setting}/len{length}.generate.log",
    benchmark:
        "benchmarks/niah/{model}/{setting}/len{length}.tsv"
    conda:
        "../../envs/longllada.yaml"
    resources:
        gpu=1,
        mem_mb=64000,
        runtime=gpu_runtime("niah", lambda w: f"len{w.length}"),
    params:
        run=run_of("niah"),
        settings=fingerprints.unrecorded(study.benchmarks.get("niah")),
        seed=study.seed,
        depends_on=depends_on("niah:generate"),
    script:
        "../../scripts/pending.py"


rule niah_score:
    input:
        lambda w: study.prediction_files(study.run_for("niah", w.model, w.setting)),
    output:
        "results/niah/{model}/{setting}/scores.json",
    log:
        "logs/niah/{model}/{setting}/score.log",
    conda:
        "../../envs/longllada.yaml"
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        run=run_of("niah"),
        settings=fingerprints.unrecorded(study.benchmarks.get("niah")),
        depends_on=depends_on("niah:score"),
    script:
        "../../scripts/pending.py"
