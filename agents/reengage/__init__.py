"""ReenGAGE critics (Levine & Feizi 2023)."""
