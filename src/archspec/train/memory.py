"""Whether a model's training memory (from the summary's own figures) and its data fit the device's
memory: checked before anything is allocated (the data's own check is `data.memory`)."""

from __future__ import annotations

from archspec.errors import UserError
from archspec.summary import human_bytes
from archspec.train.data.memory import available_host_memory

BYTES_PER_VALUE = 4  # float32 weights, gradients, optimizer moments (and activations in fp32)
ACTIVATION_BYTES = {"fp32": 4, "bf16": 2}  # `--precision bf16` keeps float32 weights, bf16 activations
OPTIMIZER_SLOTS = 2  # Adam's two moments: the most any of our optimizers keeps per weight
BACKWARD_FACTOR = 2  # the backward pass holds about as much again as the saved activations


def device_memory() -> tuple[int | None, str]:
    """(bytes the first device may use, its name): an accelerator's own memory, the host's on CPU."""
    import jax

    device = jax.local_devices()[0]
    limit = (device.memory_stats() or {}).get("bytes_limit") if device.platform != "cpu" else None
    if limit:
        return int(limit), f"the {device.device_kind}'s"
    return available_host_memory(), "the host's available"


def host_copies() -> int:
    """How many copies of data replicated over this process's devices live in host memory: one per
    CPU device, and one per process where a process per core trains (an accelerator's copies are in
    its own memory)."""
    import jax

    from archspec.train import cores

    devices = jax.local_devices()
    group = cores.current()
    return len(devices) * (group.size if group else 1) if devices[0].platform == "cpu" else 1


def training_bytes(typed, batch_size: int, precision: str = "fp32") -> int:
    """Weights, gradients, optimizer state and activations of one train step (a lower bound)."""
    weights = typed.params * BYTES_PER_VALUE
    state = weights + typed.trainable * BYTES_PER_VALUE * (1 + OPTIMIZER_SLOTS)
    return state + typed.activation_values() * batch_size * ACTIVATION_BYTES[precision] * BACKWARD_FACTOR


def check_training_fits(typed, dataset, config) -> None:
    """Refuse a run whose data plus training memory exceed the device's memory, with the numbers."""
    limit, where = device_memory()
    if not limit:
        return
    data = sum(a.nbytes for a in (dataset.x_train, dataset.x_val, dataset.x_test) if a is not None) * host_copies()
    model = training_bytes(typed, config.batch_size, config.precision)
    if data + model > limit:
        raise UserError(
            f"training needs at least {human_bytes(model + data)} ({human_bytes(model)} for the model's weights, optimizer "
            f"state and {config.precision} activations at batch {config.batch_size}, {human_bytes(data)} for the images), more than "
            f"{where} {human_bytes(limit)}",
            hint="use a smaller --batch-size or --input, "
            + ("--precision bf16 (half the activation memory), " if config.precision == "fp32" else "")
            + "or a smaller model",
        )
