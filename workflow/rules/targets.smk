# What a run makes: the summary tables, the figures with their captions, the targets.
import os

from knockout.figures import SUMMARY, figures_for, tables_read
from knockout_workflow.step_settings import HOW_TO_RUN_TRAINING

SUMMARY_TABLES = ["behavior", "neural_units", "ranked", "seeds", "models", "convergence"]
FIGURES = {
    figure.name: figure.label
    for figure in figures_for(has_ground_truth=SOURCES[MAIN].has_ground_truth)
}
"""The main experiment's figures (results/<MAIN>figures/<name>.png), with their report
labels, from the registry (knockout.figures): those that compare with the true network
only where there is one."""
FIGURE_FOLDER = f"results/{MAIN}figures/"
VECTOR_FORMATS = [kind for kind in config["plot"]["formats"] if kind != "png"]
"""Copies of every figure besides the PNG that the report shows (plot.formats)."""


def figure_tables(experiment):
    """The tables the figures of ``experiment`` read, by their registry names: every seed's
    evaluation tables, loss tables, or a summary table."""
    per_seed = {
        "behavior": seed_tables("behavior", experiment),
        "neural": seed_tables("neural", experiment),
        "losses": loss_tables(experiment),
    }
    summary = f"results/{experiment}summary/{{}}.parquet"
    return {
        name: per_seed[name] if name in per_seed else summary.format(name.removeprefix(SUMMARY))
        for name in tables_read(figures_for(has_ground_truth=SOURCES[experiment].has_ground_truth))
    }


CAPTION_TEMPLATES = WORKFLOW_ROOT / "workflow" / "report"


def caption_template(name):
    """A figure's caption template (Jinja, workflow/report/<name>.rst), given to the step
    that draws it as a parameter, so that editing a caption reruns only that step."""
    return (CAPTION_TEMPLATES / f"{name}.rst").read_text(encoding="utf-8")


def report_caption(caption):
    """A caption file the step drawing the figure writes beside it (knockout_workflow.captions), as
    ``report()`` takes it: absolute, since the report resolves captions from the rules' folder."""
    return os.path.abspath(caption)


def made_with(experiment):
    """The config sections an experiment's figures were drawn from, for their captions: of
    the data source's, only the keys and sections it reads (on recorded data, not the
    fly's or its sample counts)."""
    settings, source = EXPERIMENTS[experiment], SOURCES[experiment]
    data = {key: value for key, value in settings["data"].items() if key in source.data_keys}
    train = {
        key: value for key, value in settings["train"].items() if key not in HOW_TO_RUN_TRAINING
    }
    own = {section: settings[section] for section in source.own_sections}
    return (
        {"seeds": settings["seeds"]}
        | own
        | {"data": data, "models": settings["models"]}
        | {"train": train, "evaluate": settings["evaluate"]}
    )


def final_outputs():
    return [
        *seed_tables("behavior", MAIN),
        *seed_tables("neural", MAIN),
        *expand(f"results/{MAIN}summary/{{table}}.parquet", table=SUMMARY_TABLES),
        *expand(
            f"{FIGURE_FOLDER}{{figure}}.{{kind}}", figure=FIGURES, kind=config["plot"]["formats"]
        ),
    ]


SWEEP_FIGURE = f"results/{MAIN}sweeps/{{sweep}}/ko_minus_do"


def sweep_outputs():
    """Every sweep's figures, the PNGs marked for the report here: a sweep's caption file
    is its own, and Snakemake takes a rule's caption as one path for all its jobs."""
    outputs = []
    for sweep in SWEEP_VALUES:
        figure = SWEEP_FIGURE.format(sweep=sweep)
        shown = report(
            f"{figure}.png",
            caption=report_caption(f"{figure}.rst"),
            category="Sweeps",
            labels={"sweep": sweep},
        )
        outputs += [shown, *(f"{figure}.{kind}" for kind in VECTOR_FORMATS)]
    return outputs
