"""`python -m cnn_arch` runs the command-line tool."""

from cnn_arch.cli.start import run

run()
