"""`cnn-tui bench`: speed of the training engine against a seed-style reference loop.

`options` says what to measure (`BenchOptions`, model specs, defaults), `measure.run_bench` runs
one mode and returns its report: `speed` (images/s per batch), `whole_run`, `features`, `startup`
(with `timeline`, the phases of a trainer's start that `cnn_tui.commands.train_probe` marks),
`tui_cost`; `common` holds what they share. `reference_loop` is the seed-style DataLoader loop (one whole run
of it as its own process: `python -m cnn_tui.commands.reference_loop`). The flags and the printed
tables live in `cnn_tui.commands.bench`.
"""
