# Aggregation: result files -> the paper's figures and tables under paper_figures/.
# One rule per kind of target; a target's name picks its rule and its runs (config `targets`).


rule figure_rope_coverage:
    output:
        pdf=report(
            "paper_figures/{name}.pdf",
            caption="../report/figure.rst",
            category="Figures",
        ),
        png="paper_figures/{name}.png",
    log:
        "logs/paper/{name}.log",
    wildcard_constraints:
        name=targets_of("rope_coverage"),
    localrule: True
    conda:
        "../../envs/longllada.yaml"
    params:
        target=lambda w: study.targets[w.name],
        depends_on=depends_on("figure"),
        models=lambda w: fingerprints.Unrecorded(
            study.models[m] for m in study.targets[w.name].spec["models"]
        ),
    script:
        "../../scripts/figure_rope_coverage.py"


rule figure_perplexity:
    input:
        results=target_inputs,
        published=published_input,
    output:
        pdf=report(
            "paper_figures/{name}.pdf",
            caption="../report/figure.rst",
            category="Figures",
        ),
        png="paper_figures/{name}.png",
        comparison=report(
            "paper_figures/{name}.comparison.csv",
            caption="../report/comparison.rst",
            category="Comparisons with the paper",
        ),
    log:
        "logs/paper/{name}.log",
    wildcard_constraints:
        name=targets_of("perplexity_curve"),
    conda:
        "../../envs/longllada.yaml"
    params:
        target=lambda w: study.targets[w.name],
        depends_on=depends_on("figure"),
        models=target_models,
    script:
        "../../scripts/figure_perplexity.py"


rule figure_niah:
    input:
        results=target_inputs,
        published=published_input,
    output:
        pdf=report(
            "paper_figures/{name}.pdf",
            caption="../report/figure.rst",
            category="Figures",
        ),
        png="paper_figures/{name}.png",
        csv="paper_figures/{name}.csv",
        comparison=report(
            "paper_figures/{name}.comparison.csv",
            caption="../report/comparison.rst",
            category="Comparisons with the paper",
        ),
    log:
        "logs/paper/{name}.log",
    wildcard_constraints:
        name=f"{targets_of('niah_heatmaps')}|{targets_of('niah_by_length')}",
    conda:
        "../../envs/longllada.yaml"
    params:
        target=lambda w: study.targets[w.name],
        labels=lambda w: fingerprints.unrecorded(
            {r.model: study.models[r.model].label for r in study.targets[w.name].runs}
        ),
        depends_on=depends_on("figure"),
    script:
        "../../scripts/figure_niah.py"


rule figure_tsne:
    input:
        results=target_inputs,
        published=published_input,
    output:
        pdf=report(
            "paper_figures/{name}.pdf",
            caption="../report/figure.rst",
            category="Figures",
        ),
        png="paper_figures/{name}.png",
    log:
        "logs/paper/{name}.log",
    wildcard_constraints:
        name=targets_of("tsne_qk"),
    conda:
        "../../envs/longllada.yaml"
    params:
        target=lambda w: study.targets[w.name],
        depends_on=depends_on("figure"),
        models=target_models,
        seed=study.seed,
    script:
        "../../scripts/figure_tsne.py"


rule table_ruler:
    input:
        results=target_inputs,
        published=published_input,
    output:
        csv=report(
            "paper_figures/{name}.csv",
            caption="../report/table.rst",
            category="Tables",
        ),
        md="paper_figures/{name}.md",
        tex="paper_figures/{name}.tex",
        comparison=report(
            "paper_figures/{name}.comparison.csv",
            caption="../report/comparison.rst",
            category="Comparisons with the paper",
        ),
        tasks="paper_figures/{name}.tasks.csv",
    log:
        "logs/paper/{name}.log",
    wildcard_constraints:
        name=targets_of("ruler_table"),
    conda:
        "../../envs/longllada.yaml"
    params:
        target=lambda w: study.targets[w.name],
        labels=lambda w: fingerprints.unrecorded(
            {r.model: study.models[r.model].label for r in study.targets[w.name].runs}
        ),
        contexts=list(RULER_CONTEXTS),
        depends_on=depends_on("figure"),
    script:
        "../../scripts/table_ruler.py"


rule table_longbench:
    input:
        results=target_inputs,
        published=published_input,
    output:
        csv=report(
            "paper_figures/{name}.csv",
            caption="../report/table.rst",
            category="Tables",
        ),
        md="paper_figures/{name}.md",
        tex="paper_figures/{name}.tex",
        comparison=report(
            "paper_figures/{name}.comparison.csv",
            caption="../report/comparison.rst",
            category="Comparisons with the paper",
        ),
        subsets="paper_figures/{name}.subsets.csv",
    log:
        "logs/paper/{name}.log",
    wildcard_constraints:
        name=targets_of("longbench_table"),
    conda:
        "../../envs/longllada.yaml"
    params:
        target=lambda w: study.targets[w.name],
        labels=lambda w: fingerprints.unrecorded(
            {r.model: study.models[r.model].label for r in study.targets[w.name].runs}
        ),
        contexts=list(LONGBENCH_CONTEXTS),
        depends_on=depends_on("figure"),
    script:
        "../../scripts/table_longbench.py"
