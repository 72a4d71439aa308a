# NeedleBench NIAH (Figures 1b, 2, 3, 6-11):
#   data (submit host) -> prompts (CPU, OpenCompass) -> generate (GPU) -> score (CPU, OpenCompass).
# The prompts and score rules run in the OpenCompass environment (envs/opencompass.yaml; in the
# pip setup the script hands their work to .venv-opencompass), one process per job.
NIAH = study.benchmarks.get("niah", {})


rule niah_data:
    output:
        manifest=data_sources.manifest_path("needlebench"),
    log:
        "logs/data/needlebench.log",
    localrule: True
    conda:
        "../../envs/longllada.yaml"
    params:
        benchmark="niah",
        source=fingerprints.unrecorded(study.data.get("needlebench")),
        depends_on=depends_on("niah:data"),
    script:
        "../../scripts/benchmark_data.py"


rule niah_prompts:
    input:
        data=data_sources.manifest_path("needlebench"),
    output:
        prompts="results/prompts/niah/len{length}.jsonl",
        meta="results/prompts/niah/len{length}.meta.json",
    log:
        "logs/prompts/niah/len{length}.log",
    wildcard_constraints:
        length=one_of(NIAH.get("lengths", [])),
    conda:
        "../../envs/opencompass.yaml"
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        depends_on=depends_on("niah:prompts"),
    script:
        "../../scripts/niah_prompts.py"


rule niah_generate:
    input:
        prompts="results/prompts/niah/len{length}.jsonl",
        checkpoint=checkpoint_of("niah"),
        verified=verified_of("niah"),
    output:
        predictions="results/niah/{model}/{setting}/len{length}.predictions.jsonl",
        provenance="results/niah/{model}/{setting}/len{length}.provenance.json",
    log:
        "logs/niah/{model}/{setting}/len{length}.generate.log",
    benchmark:
        "benchmarks/niah/{model}/{setting}/len{length}.tsv"
    wildcard_constraints:
        length=one_of(NIAH.get("lengths", [])),
    conda:
        "../../envs/longllada.yaml"
    resources:
        gpu=1,
        mem_mb=64000,
        runtime=gpu_runtime("niah", lambda w: f"len{w.length}"),
    params:
        model=lambda w: study.models[w.model],
        run=run_of("niah"),
        settings=fingerprints.unrecorded(NIAH),
        max_new_tokens=NIAH.get("max_new_tokens"),
        # the official runs: one dataset (and seed) per length and depth; a sample limit
        # covers every depth first (the score rule selects the same samples)
        rng_group=niah.RNG_GROUP,
        spread_by=niah.SPREAD_BY,
        seed=study.seed,
        depends_on=depends_on("niah:generate"),
    script:
        "../../scripts/generate.py"


rule niah_score:
    input:
        prompts=lambda w: [
            f"results/prompts/niah/len{n}.jsonl" for n in NIAH["lengths"]
        ],
        predictions=lambda w: study.prediction_files(
            study.run_for("niah", w.model, w.setting)
        ),
        generation=lambda w: study.generation_records(
            study.run_for("niah", w.model, w.setting)
        ),
    output:
        "results/niah/{model}/{setting}/scores.json",
    log:
        "logs/niah/{model}/{setting}/score.log",
    conda:
        "../../envs/opencompass.yaml"
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        benchmark="niah",
        depends_on=depends_on("niah:score"),
    script:
        "../../scripts/score.py"


rule niah_all_runs:
    input:
        study.benchmark_result_files("niah"),
    output:
        "paper_figures/niah_all_runs.csv",
    log:
        "logs/paper/niah_all_runs.log",
    localrule: True
    conda:
        "../../envs/longllada.yaml"
    params:
        labels={k: m.label for k, m in study.models.items()},
        depends_on=depends_on("niah:all_runs"),
    script:
        "../../scripts/niah_all_runs.py"
