# What a run makes: the summary tables, the figures with their captions, the targets.
import os

from knockout_workflow.config_checks import HOW_TO_RUN_TRAINING

SUMMARY_TABLES = ["behavior", "neural_units", "seeds", "models", "convergence"]
FIGURES = {
    "behavior_r2": "behaviour R² per test set",
    "neural_r2": "neural R² per unit",
    "neural_r2_three_ways": "neural R² three ways",
    "r2_vs_contribution": "neural R² vs contribution",
    "silencing_effect": "silencing effect, fly vs model",
    "weight_cosine": "weight recovery",
    "loss_curves": "training loss per epoch",
}
"""The main experiment's figures (results/<MAIN>figures/<name>.png), with their report labels."""
FIGURE_FOLDER = f"results/{MAIN}figures/"
VECTOR_FORMATS = [kind for kind in config["plot"]["formats"] if kind != "png"]
"""Copies of every figure besides the PNG that the report shows (plot.formats)."""
GROUND_TRUTH_FIGURES = ["r2_vs_contribution", "silencing_effect", "weight_cosine"]
"""Figures that compare with the true network: drawn where the data source has one."""
if not SOURCES[MAIN].has_ground_truth:
    FIGURES = {name: label for name, label in FIGURES.items() if name not in GROUND_TRUTH_FIGURES}


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
        | {"train": train}
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
