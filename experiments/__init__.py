"""Experiments: many participants (browser tabs and/or CPython clients) against a fresh
server, non-IID partitions, baselines, and a report with plots. ``webfl experiment``."""
