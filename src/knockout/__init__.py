"""Knockout training (Cowley et al., Nature 2024) on a simulated linear "fruit fly".

The core knows nothing of Snakemake: :mod:`simulation` draws a fly and its behaviour,
:mod:`training` fits control/noko/ko/do networks, :mod:`metrics` scores them,
:mod:`plotting` draws the figures and :mod:`tables` reads and writes the files
that flow between workflow steps.
"""
