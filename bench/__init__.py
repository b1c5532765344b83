"""Benchmarks (not tests): `python -m bench report [--appeals N]`."""
