"""Frames and shards, data sets, the training loop, calibration, metrics, evaluation, explanations."""
