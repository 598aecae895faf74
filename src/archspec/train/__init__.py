"""Training: data loading, the training loop and checkpoints for models built from a spec."""
