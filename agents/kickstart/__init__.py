"""Kickstarted PPO / A2C (Schmitt et al. 2018)."""
