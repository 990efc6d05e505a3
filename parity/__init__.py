"""Parity harness: calibration grids, fixture store, checks, spectra, reports and the `parity` CLI.

Imports torch_impl and numpy; reaches the big_vision reference only through files (recorded fixtures, or
the `python -m reference` subprocess that writes them).
"""
