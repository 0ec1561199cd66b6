"""Training: the settings, data, models, the loop, run storage and the tools on a saved run.

`config` is the one definition of every setting (`TrainConfig`, presets, layering). The rooms:
`data` loads images, `models` builds networks, `loop` trains and evaluates (the engine, its
set-up and checkpoints, the run's life in `trainer`, several processes in `distributed`), `runs`
owns a run folder and its state, starts runs as processes and queues sweeps, `tools` works on a
saved run (inspect, predict, export, the LR range test) and `system` knows the machine. Nothing
here imports argparse, textual, `cnn_tui.commands` or `cnn_tui.lessons`.
"""
