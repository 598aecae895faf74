"""The training defaults every command shows and uses (`train`, `compare`, `summarize`'s batch size):
TrainConfig's, so that a default is defined once."""

from __future__ import annotations

import dataclasses

from archspec.train.config import TrainConfig

DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.default is not dataclasses.MISSING}
