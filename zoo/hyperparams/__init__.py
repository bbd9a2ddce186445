"""Tuned hyperparameters, one YAML file per algorithm, keyed by env id with a ``default:`` entry."""
