"""Our Flax model's weights copied into models built by written Keras and PyTorch code: each weighted
node, in graph order, to the written model's weighted layers in the order the code makes them, in
the framework's layout (so a test compares what the two compute, not only what they count)."""

from __future__ import annotations

import contextlib

import numpy as np

RNG = np.random.default_rng(0)


def random_flax_model(typed):
    """Our Flax model of `typed`, built abstractly and every variable given random values (its
    statistics too, so a test compares running statistics as well; building it for real compiles
    each layer's initialiser, tens of seconds), and its (node, {variable path: array}) in graph order."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from archspec.flax_model import build_model

    model = nnx.eval_shape(lambda: build_model(typed))
    found = []
    for node in typed.graph.nodes:
        name = f"{node.kind}_{node.id}"
        if name not in model.layers:
            continue
        arrays = {}
        for path, variable in nnx.iter_graph(model.layers[name]):
            if not isinstance(variable, nnx.Variable):
                continue
            shape = variable.get_value()
            if isinstance(variable, nnx.RngKey):
                variable.set_value(jax.random.key(0))
                continue
            if isinstance(variable, nnx.RngState):
                variable.set_value(jnp.zeros(shape.shape, shape.dtype))
                continue
            key = "/".join(map(str, path))
            fan_in = max(int(np.prod(shape.shape[:-1])), 1)
            value = RNG.normal(size=shape.shape) / (np.sqrt(fan_in) if key.endswith("kernel") else 2)
            if key in ("var", "variance"):
                value = np.abs(value) + 0.5
            if key == "count":
                value = np.zeros(shape.shape)
            value = value.astype(np.float32)
            variable.set_value(value)
            arrays[key] = value
        if arrays:
            found.append((node, arrays))
    return model, found


def _conv(kernel: np.ndarray) -> np.ndarray:
    """HWIO (Flax, Keras) -> OIHW (PyTorch); a transposed conv's HW(out)(in) -> (in)(out)HW alike."""
    return kernel.transpose(3, 2, 0, 1)


def torch_entries(node, arrays: dict, typed) -> list[tuple[str, np.ndarray]]:
    """(state_dict name suffix, array) in the order the written PyTorch code registers them."""
    kind, attrs = node.kind, node.attrs
    if kind in ("conv", "dwconv", "convtranspose"):
        return [("weight", _conv(arrays["kernel"]))] + ([("bias", arrays["bias"])] if "bias" in arrays else [])
    if kind == "sepconv":
        entries = [("weight", _conv(arrays["depthwise/kernel"])), ("weight", _conv(arrays["pointwise/kernel"]))]
        return entries + ([("bias", arrays["pointwise/bias"])] if "pointwise/bias" in arrays else [])
    if kind == "dense":
        kernel = arrays["kernel"]
        source = typed.infos[node.inputs[0]].shape
        producer = typed.graph.nodes[node.inputs[0]]
        if producer.kind == "flatten" and len(typed.infos[producer.inputs[0]].shape) == 3:
            h, w, c = typed.infos[producer.inputs[0]].shape  # PyTorch flattens C, H, W; Flax H, W, C
            kernel = kernel.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(source[0], -1)
        return [("weight", kernel.T)] + ([("bias", arrays["bias"])] if "bias" in arrays else [])
    if kind in ("bn", "layernorm", "groupnorm"):
        stats = [("running_mean", arrays["mean"]), ("running_var", arrays["var"])] if kind == "bn" else []
        affine = [(n, arrays[k]) for n, k in (("weight", "scale"), ("bias", "bias")) if k in arrays]
        both = attrs["center"] and attrs["scale"]
        return affine + stats if both else stats + affine
    if kind == "layerscale":
        return [("gamma", arrays["gamma"])]
    if kind == "normalize":
        shape = (-1, 1, 1) if len(typed.infos[node.id].shape) == 3 else (-1,)
        return [
            ("mean", arrays["mean"].reshape(shape)),
            ("variance", arrays["variance"].reshape(shape)),
            ("count", arrays["count"]),
        ]
    raise AssertionError(f"no PyTorch layout for {kind}")


def load_torch(model, entries: list[tuple[str, np.ndarray]]) -> None:
    import torch

    names = [n for n in model.state_dict() if not n.endswith("num_batches_tracked")]
    assert len(names) == len(entries), (len(names), len(entries))
    state = {}
    for name, (suffix, array) in zip(names, entries):
        assert name.endswith(suffix), (name, suffix)
        state[name] = torch.from_numpy(np.ascontiguousarray(array))
    missing = model.load_state_dict(state, strict=False)
    assert not missing.unexpected_keys


def keras_weights(node, arrays: dict) -> list[np.ndarray]:
    """The weights of the Keras layer written for `node`, in `set_weights` order."""
    kind = node.kind
    if kind == "dwconv":
        kh, kw, _, out = arrays["kernel"].shape
        channels = out // node.attrs["multiplier"]
        return [arrays["kernel"].reshape(kh, kw, channels, -1)] + ([arrays["bias"]] if "bias" in arrays else [])
    if kind == "sepconv":
        kh, kw, _, middle = arrays["depthwise/kernel"].shape
        depthwise = arrays["depthwise/kernel"].reshape(kh, kw, middle // node.attrs["multiplier"], -1)
        bias = [arrays["pointwise/bias"]] if "pointwise/bias" in arrays else []
        return [depthwise, arrays["pointwise/kernel"], *bias]
    if kind == "bn":
        return [arrays[k] for k in ("scale", "bias") if k in arrays] + [arrays["mean"], arrays["var"]]
    if kind == "normalize":
        return [arrays["mean"], arrays["variance"], arrays["count"]]
    order = {"layerscale": ("gamma",), "layernorm": ("scale", "bias"), "groupnorm": ("scale", "bias")}
    return [arrays[k] for k in order.get(kind, ("kernel", "bias")) if k in arrays]


@contextlib.contextmanager
def keras_layers_in_creation_order(keras):
    """The Keras layers made while the block runs, in the order the code makes them."""
    made: list = []
    original = keras.layers.Layer.__init__

    def init(self, *args, **kwargs):
        made.append(self)
        original(self, *args, **kwargs)

    keras.layers.Layer.__init__ = init
    try:
        yield made
    finally:
        keras.layers.Layer.__init__ = original
