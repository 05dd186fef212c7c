"""Forecasting evaluation: the time split and origins, baselines, metrics and plots (torch-free)."""
