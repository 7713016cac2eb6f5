"""Experiments: a grid of arms and seeds from one config, content-addressed stages, and a report."""
