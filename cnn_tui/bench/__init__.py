"""`cnn-tui bench`: speed of the training engine against a seed-style reference loop.

`measure` runs the benchmarks, `args` defines the flags, `reference_loop` is the seed-style
DataLoader loop (also runnable as `python -m cnn_tui.bench.reference_loop`).
"""
