"""Benchmarks for django_chatkit (not part of the installed package).

Run from the repository root, e.g. ``python -m benchmarks.history_scale``; see README.md.
"""
