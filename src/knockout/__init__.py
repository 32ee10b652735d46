"""Knockout training (Cowley et al., Nature 2024): the science, without a workflow.

A simulated fly (:mod:`simulation`: linear or ReLU, deeper, several outputs) or recorded
data (:mod:`data_folder`: the import contract, reading, checking, splitting); the networks
(:mod:`network`); the compared models (:mod:`models`, the registry); training many
networks as one batched computation (:mod:`training`); the measures (:mod:`metrics`,
:mod:`identifiability`, :mod:`convergence`, :mod:`summary`); the figures
(:mod:`plotting`); the tables that flow between steps (:mod:`tables`). The one-seed
notebook interface is :mod:`api`.

Nothing here knows of Snakemake: the workflow's plumbing (config checks, the job
wrapper, captions, the run's summary) is the package ``knockout_workflow`` in
``workflow/lib``.
"""
