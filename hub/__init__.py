"""Hugging Face Hub sharing of agents, pretrained teachers and datasets."""
