"""Compressing two-layer networks (Amani, Bombari, Mondelli, Pukdee, Rini, 2022): exact population loss,
ETF constructions, the compression optimizer, the mean-field objective, baselines and sweeps.

Target ``f*(x) = sum_i a_i s(w_i.x)`` (N units), compressed ``g(x) = sum_j b_j s(v_j.x)`` (M < N units),
loss ``E_{x ~ N(0, I_d)} (f*(x) - g(x))^2`` in closed form. Pure torch/numpy/scipy/xarray: no UI imports.
"""

from nonlin_explorer.compression.baselines import kmeans_merge, magnitude_prune, sgd_distill
from nonlin_explorer.compression.diagnostics import (
    MonteCarloEstimate,
    alignment,
    cosine_gram,
    etf_distance,
    monte_carlo_loss,
)
from nonlin_explorer.compression.etf import (
    ETFSearchResult,
    coherence,
    etf_search,
    is_etf,
    random_rotation,
    simplex_etf,
    simplex_gram,
    welch_bound,
)
from nonlin_explorer.compression.kernels import ACTIVATIONS, get_activation, kernel_error, kernel_matrix, relu_k
from nonlin_explorer.compression.loss import PopulationLoss, population_loss
from nonlin_explorer.compression.meanfield import (
    MeanFieldOptimum,
    MeanFieldSolution,
    equiangular_value,
    meanfield_loss,
    meanfield_optimum,
    meanfield_solution,
    meanfield_value,
    simplex_value,
    sphere_kernel_mean,
)
from nonlin_explorer.compression.optimize import (
    METHODS,
    CompressionProgress,
    CompressionResult,
    compare_methods,
    compress,
)
from nonlin_explorer.compression.sweep import SWEEP_METHODS, sweep, sweep_attrs
from nonlin_explorer.compression.targets import Target, make_target, random_target, target_from_module

__all__ = [
    "ACTIVATIONS",
    "METHODS",
    "SWEEP_METHODS",
    "CompressionProgress",
    "CompressionResult",
    "ETFSearchResult",
    "MeanFieldOptimum",
    "MeanFieldSolution",
    "MonteCarloEstimate",
    "PopulationLoss",
    "Target",
    "alignment",
    "coherence",
    "compare_methods",
    "compress",
    "cosine_gram",
    "equiangular_value",
    "etf_distance",
    "etf_search",
    "get_activation",
    "is_etf",
    "kernel_error",
    "kernel_matrix",
    "kmeans_merge",
    "magnitude_prune",
    "make_target",
    "meanfield_loss",
    "meanfield_optimum",
    "meanfield_solution",
    "meanfield_value",
    "monte_carlo_loss",
    "population_loss",
    "random_rotation",
    "random_target",
    "relu_k",
    "sgd_distill",
    "simplex_etf",
    "simplex_gram",
    "simplex_value",
    "sphere_kernel_mean",
    "sweep",
    "sweep_attrs",
    "target_from_module",
    "welch_bound",
]
