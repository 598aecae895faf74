"""`check_fits`: can the model's last layer (units and activation) represent the dataset's classes?"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archspec.errors import UserError

if TYPE_CHECKING:
    from archspec.train.data.dataset import Dataset


def check_fits(dataset: Dataset, *, num_outputs: int, head_activation: str | None) -> None:
    """Check that a model ending in `num_outputs` units and `head_activation` fits `dataset`.

    `head_activation` is the last layer's activation, None (or "linear") when it outputs logits.
    Softmax and logits need one unit per class; sigmoid needs one per class, or one for two classes.

    Raises:
        UserError: the last layer cannot represent the dataset's classes.
    """
    classes = dataset.num_classes
    activation = (head_activation or "linear").lower()
    head = f"dense {num_outputs}" if activation == "linear" else f"dense {num_outputs} {activation}"
    found = f"{dataset.source} has {_describe_classes(dataset.class_names)}"
    change = f"change the last layer to `dense {classes} softmax`"
    if activation not in ("softmax", "sigmoid", "linear"):
        raise UserError(
            f"the spec ends with `{head}`, which cannot output class scores: "
            "a classifier's last layer has softmax, sigmoid or no activation",
            hint=change,
        )
    if num_outputs == classes or (activation == "sigmoid" and num_outputs == 1 and classes == 2):
        return
    if activation == "sigmoid" and num_outputs == 1:
        raise UserError(f"`{head}` can tell only 2 classes apart, but {found}", hint=change)
    if activation == "linear":
        raise UserError(
            f"the spec ends with `{head}` (no activation: one logit per class) but {found}",
            hint=f"change the last layer to `dense {classes}` or `dense {classes} softmax`",
        )
    raise UserError(f"the spec ends with `{head}` but {found}", hint=change)


def _describe_classes(class_names: tuple[str, ...]) -> str:
    shown = ", ".join(class_names[:5]) + (", ..." if len(class_names) > 5 else "")
    return f"{len(class_names)} classes ({shown})"
