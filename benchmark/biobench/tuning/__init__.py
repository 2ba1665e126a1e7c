"""Tuning: the same search budget for every pairing, selection on validation (``biobench tune``)."""
