"""`python -m cnn_tui` runs the same entry point as the `cnn-tui` script."""

from cnn_tui.cli import run

run()
