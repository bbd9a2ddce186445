"""Pieces shared by the agent families: type aliases, schedules, device helpers."""
