"""Argument checking for the public API, by what is checked: ``params`` (parameter specs
and tables), ``arrays`` (data, targets, weights; dense, pandas or sparse) and
``architecture`` (layer sizes and per-layer settings)."""
