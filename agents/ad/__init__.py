"""Algorithm Distillation (Laskin et al. 2023)."""
