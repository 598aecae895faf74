"""The tiny dataset of the training tests, for the ONNX round trips."""

from tests.train.conftest import tiny_data  # noqa: F401  (a fixture)
