"""Step-through lessons: naive convolution and pooling, computed with plain nested loops.

`naive` holds the loops (forward and backward) and the step events they record, `examples` turns
lesson flags and example files into arrays, `replay` is the UI-free model of a lesson screen
(cursor, highlights, step text), `trace` prints a lesson headless and `args` defines the flags.
The whole-network lesson: `network` chains the naive ops (conv, ReLU, max-pool, flatten,
linear, softmax cross-entropy, SGD) on one image, `net_replay` is its screen's model and
`net_trace` its headless trace.
Nothing here imports torch, textual or `cnn_tui.training`.
"""
