"""Security tests of issue #11: every loader against poisoned repos, folders and files."""
