"""Step-through lessons: naive convolution and pooling, computed with plain nested loops.

`naive` holds the loops (forward and backward) and the step events they record, `settings` the
lessons' limits, defaults and checks and the typed settings a command passes, `examples` turns
settings and example files into arrays, `replay` replays one recorded computation (cursor,
highlights, grids), `step_text` writes numbers, cells and steps as text, `op_replay` is the
UI-free model of the conv / pool lesson screen (its passes, phases and hints) and `trace`
writes a lesson's headless trace. The whole-network lesson: `network` chains the naive ops
(conv, ReLU, max-pool, flatten, linear, softmax cross-entropy, SGD) on one image, `net_replay`
is its screen's model and `net_trace` its headless trace.
Nothing here imports argparse, textual or `cnn_tui.training`; torch only in the checks against
PyTorch (`replay.compare_with_torch`, `network.compare_with_torch`).
"""
