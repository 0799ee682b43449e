"""Judging predictors: rank correlations and error metrics against the truth."""

from workbench.evaluation._metrics import kendall_tau, rank_correlations, spearman_rho

__all__ = ["kendall_tau", "rank_correlations", "spearman_rho"]
