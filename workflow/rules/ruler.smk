# RULER (Tables 2, 4):
#   data (submit host) -> prompts (CPU, OpenCompass) -> generate (GPU, sharded by sample range)
#   -> score (CPU, OpenCompass).
# As NIAH: the prompts and score rules run in the OpenCompass environment, one process per job.
RULER = study.benchmarks.get("ruler", {})
RULER_CONTEXTS = RULER.get("contexts", {})


rule ruler_data:
    output:
        manifest=data_sources.manifest_path("ruler"),
    log:
        "logs/data/ruler.log",
    localrule: True
    conda:
        "../../envs/longllada.yaml"
    params:
        benchmark="ruler",
        source=fingerprints.unrecorded(study.data.get("ruler")),
        depends_on=depends_on("ruler:data"),
    script:
        "../../scripts/benchmark_data.py"


rule ruler_prompts:
    input:
        data=data_sources.manifest_path("ruler"),
    output:
        prompts="results/prompts/ruler/{context}_{task}.jsonl",
        meta="results/prompts/ruler/{context}_{task}.meta.json",
    log:
        "logs/prompts/ruler/{context}_{task}.log",
    wildcard_constraints:
        context=one_of(RULER_CONTEXTS),
        task=one_of(RULER.get("tasks", [])),
    conda:
        "../../envs/opencompass.yaml"
    resources:
        mem_mb=8000,
        # the generator's own time limit (prompt_timeout_s), plus starting OpenCompass
        runtime=ruler.prompt_timeout_s(RULER) // 60 + 10,
    params:
        depends_on=depends_on("ruler:prompts"),
    script:
        "../../scripts/ruler_prompts.py"


rule ruler_generate:
    input:
        prompts="results/prompts/ruler/{context}_{task}.jsonl",
        checkpoint=checkpoint_of("ruler"),
        verified=verified_of("ruler"),
        # Dream: the shard before, whose random stream this one continues
        previous=previous_shard_of("ruler", shard_of("task")),
    output:
        predictions="results/ruler/{model}/{setting}/{context}_{task}.samples{first}-{stop}.predictions.jsonl",
        provenance="results/ruler/{model}/{setting}/{context}_{task}.samples{first}-{stop}.provenance.json",
    log:
        "logs/ruler/{model}/{setting}/{context}_{task}.samples{first}-{stop}.generate.log",
    benchmark:
        "benchmarks/ruler/{model}/{setting}/{context}_{task}.samples{first}-{stop}.tsv"
    wildcard_constraints:
        context=one_of(RULER_CONTEXTS),
        task=one_of(RULER.get("tasks", [])),
        first="[0-9]+",
        stop="[0-9]+",
    conda:
        "../../envs/longllada.yaml"
    resources:
        gpu=1,
        mem_mb=64000,
        runtime=gpu_runtime("ruler", shard_of("task")),
    params:
        model=lambda w: study.models[w.model],
        run=run_of("ruler"),
        settings=fingerprints.unrecorded(RULER),
        max_new_tokens=RULER.get("max_new_tokens"),
        # one OpenCompass task (and seed) per (task, length) file: one stream through its
        # samples, which a Dream shard continues from the shard before (continue_from)
        rng_group=None,
        spread_by=None,
        sample_range=lambda w: [int(w.first), int(w.stop)],
        continue_from=continue_from_of("ruler", shard_of("task")),
        seed=study.seed,
        depends_on=depends_on("ruler:generate"),
    script:
        "../../scripts/generate.py"


rule ruler_score:
    input:
        prompts=lambda w: [
            f"results/prompts/ruler/{ruler.unit_name(c, t)}.jsonl"
            for c in RULER_CONTEXTS
            for t in RULER["tasks"]
        ],
        predictions=lambda w: study.prediction_files(
            study.run_for("ruler", w.model, w.setting)
        ),
        generation=lambda w: study.generation_records(
            study.run_for("ruler", w.model, w.setting)
        ),
    output:
        "results/ruler/{model}/{setting}/scores.json",
    log:
        "logs/ruler/{model}/{setting}/score.log",
    conda:
        "../../envs/opencompass.yaml"
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        benchmark="ruler",
        depends_on=depends_on("ruler:score"),
    script:
        "../../scripts/score.py"
