"""cnn-arch's library: spec text → typed IR → summary, lint and Flax model."""

__version__ = "0.1.0"
