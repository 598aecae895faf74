"""Which epoch's model a run keeps, and the words that say which and why.

Keras `ModelCheckpoint(save_best_only=True)` conventions: `monitor="val_loss"` (the default) keeps
the epoch of the lowest validation loss; `val_accuracy` the highest validation accuracy, a tie going
to the lower loss (a 20-image validation set ties often: its accuracy moves in 5-point steps). An
epoch must beat the kept one strictly. Without validation images the last epoch is the model.
"""

from __future__ import annotations

from typing import Any

# Below this many validation images the score that picks the kept epoch is coarse: the run says so.
SMALL_VALIDATION = 100
MONITOR_WORDS = {"val_loss": "lowest validation loss", "val_accuracy": "highest validation accuracy"}


def improves(val: dict[str, float], best_loss: float | None, best_accuracy: float | None, monitor: str) -> bool:
    """Whether validation metrics `val` beat the kept epoch's (None: no epoch kept yet)."""
    if best_loss is None:
        return True
    if monitor == "val_loss":
        return val["loss"] < best_loss
    return val["accuracy"] > best_accuracy or (val["accuracy"] == best_accuracy and val["loss"] < best_loss)


def kept_reason(results: dict[str, Any]) -> str:
    """Why results.json's model is the one kept: `the lowest validation loss (0.0488) of 15 epochs`."""
    if results["checkpoint"] != "best":
        return "the last epoch: no validation images to choose by"
    monitor, val = results["monitor"], results["val"]
    value = f"{val['loss']:.4f}" if monitor == "val_loss" else f"{val['accuracy']:.2%}, loss {val['loss']:.4f}"
    return f"the {MONITOR_WORDS[monitor]} ({value}) of {results['epochs']} epochs"


def small_validation(images: int) -> str | None:
    """A warning when `images` validation images make a coarse score, else None."""
    if not 0 < images < SMALL_VALIDATION:
        return None
    return (
        f"validation has only {images} images: one image moves its accuracy by {100 / images:.1f} points, "
        "so the epoch kept is chosen on a coarse score (more validation images: --val-split, or a val/ folder)"
    )


def final_line(results: dict[str, Any]) -> str:
    """The last line of every run: the test accuracy and the epoch of the model it comes from."""
    kept = f"Model: epoch {results['epoch']}, {kept_reason(results)}"
    val = f"validation accuracy {results['val']['accuracy']:.2%}; " if "val" in results else ""
    if "test" in results:
        where = "held out of the training data" if results.get("test_held_out") else "the data's test split"
        test = results["test"]
        return f"{kept}: {val}test accuracy {test['accuracy']:.2%} on {test['images']:,} images ({where})"
    return f"{kept}: {val}no test accuracy: the data has no test split and --test-split 0 held none out"
