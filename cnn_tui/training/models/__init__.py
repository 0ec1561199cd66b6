"""Models: the registry of networks (`registry`), airbench-style fast networks (`fast`), layers, sizes and memory estimates (`sizes`), and the frozen-backbone feature cache."""
