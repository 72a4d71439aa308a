# LongBench (Tables 1, 3):
#   data (submit host) -> prompts (CPU, OpenCompass; one per subset, whole)
#   -> generate (GPU, per model, setting, context and subset, sharded by sample range; the
#      prompt cut to the context's budget in the model's own tokens) -> score (CPU, OpenCompass).
LONGBENCH = study.benchmarks.get("longbench", {})
LONGBENCH_CONTEXTS = LONGBENCH.get("contexts", {})
LONGBENCH_SUBSETS = LONGBENCH.get("subsets", [])


rule longbench_data:
    output:
        manifest=data_sources.manifest_path("longbench"),
    log:
        "logs/data/longbench.log",
    localrule: True
    conda:
        "../../envs/longllada.yaml"
    params:
        benchmark="longbench",
        source=fingerprints.unrecorded(study.data.get("longbench")),
        depends_on=depends_on("longbench:data"),
    script:
        "../../scripts/benchmark_data.py"


rule longbench_prompts:
    input:
        data=data_sources.manifest_path("longbench"),
    output:
        prompts="results/prompts/longbench/{subset}.jsonl",
        meta="results/prompts/longbench/{subset}.meta.json",
    log:
        "logs/prompts/longbench/{subset}.log",
    wildcard_constraints:
        subset=one_of(LONGBENCH_SUBSETS),
    conda:
        "../../envs/opencompass.yaml"
    resources:
        mem_mb=8000,
        runtime=LONGBENCH.get("prompt_timeout_s", 1800) // 60 + 10,
    params:
        depends_on=depends_on("longbench:prompts"),
    script:
        "../../scripts/longbench_prompts.py"


rule longbench_generate:
    input:
        prompts="results/prompts/longbench/{subset}.jsonl",
        checkpoint=checkpoint_of("longbench"),
        verified=verified_of("longbench"),
        # Dream: the shard before, whose random stream this one may continue
        previous=previous_shard_of("longbench", shard_of("subset")),
    output:
        predictions="results/longbench/{model}/{setting}/{context}_{subset}.samples{first}-{stop}.predictions.jsonl",
        provenance="results/longbench/{model}/{setting}/{context}_{subset}.samples{first}-{stop}.provenance.json",
    log:
        "logs/longbench/{model}/{setting}/{context}_{subset}.samples{first}-{stop}.generate.log",
    benchmark:
        "benchmarks/longbench/{model}/{setting}/{context}_{subset}.samples{first}-{stop}.tsv"
    wildcard_constraints:
        context=one_of(LONGBENCH_CONTEXTS),
        subset=one_of(LONGBENCH_SUBSETS),
        first="[0-9]+",
        stop="[0-9]+",
    conda:
        "../../envs/longllada.yaml"
    resources:
        gpu=1,
        mem_mb=64000,
        runtime=gpu_runtime("longbench", shard_of("subset")),
    params:
        model=lambda w: study.models[w.model],
        run=run_of("longbench"),
        settings=fingerprints.unrecorded(LONGBENCH),
        # the subset's OpenCompass max_out_len, or the demo's cap (LLaDA rounds it up to
        # whole blocks)
        max_new_tokens=lambda w: longbench.answer_tokens(w.subset, LONGBENCH),
        budget=lambda w: LONGBENCH_CONTEXTS[w.context],
        # the official SizePartitioner's tasks (the prompts' oc_task): the stream restarts at
        # each task's first sample and nowhere else; a Dream shard point inside a task
        # continues from the shard before (continue_from)
        rng_group=longbench.RNG_GROUP,
        spread_by=None,
        sample_range=sample_range_of("longbench"),
        continue_from=continue_from_of("longbench", shard_of("subset")),
        seed=study.seed,
        depends_on=depends_on("longbench:generate"),
    script:
        "../../scripts/generate.py"


rule longbench_score:
    input:
        prompts=expand(
            "results/prompts/longbench/{subset}.jsonl", subset=LONGBENCH_SUBSETS
        ),
        predictions=lambda w: study.prediction_files(
            study.run_for("longbench", w.model, w.setting)
        ),
        generation=lambda w: study.generation_records(
            study.run_for("longbench", w.model, w.setting)
        ),
    output:
        "results/longbench/{model}/{setting}/scores.json",
    log:
        "logs/longbench/{model}/{setting}/score.log",
    conda:
        "../../envs/opencompass.yaml"
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        benchmark="longbench",
        depends_on=depends_on("longbench:score"),
    script:
        "../../scripts/score.py"
