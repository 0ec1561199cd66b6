"""Training: configuration, data sets, models, the training engine and run storage.

`config` is the one definition of every setting (`args` turns it into flags), `datasets` and
`shapes_dataset` load images, `models` / `fast_models` build networks, `engine` trains and
evaluates, `runs` owns the run directory, `launcher` starts and follows runs as processes and
`headless` is `cnn-tui train|eval|runs --no-ui`. Nothing here imports textual or
`cnn_tui.lessons`.
"""
