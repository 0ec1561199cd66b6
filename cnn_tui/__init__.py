"""cnn-tui: learn and run convolutional networks in the terminal."""

__version__ = "0.1.0"
