"""The Keras side of the source reader: Keras calls become layers, tensors and models, and models
become nodes of the layer graph (`keras_graph`), which each layer kind reads (`read_keras`)."""

from __future__ import annotations

import ast
from typing import Any

from archspec.errors import Span, SpecError
from archspec.interop.keras_graph import ACTIVATION_FUNCTIONS, IDENTITY_AT_INFERENCE, keras_kinds, kinds_hint
from archspec.interop.keras_values import (
    Function,
    Functional,
    Instance,
    KerasShape,
    LayerObject,
    Sequential,
    Tensor,
    Unknown,
    span_of,
)
from archspec.layers import Untranslatable

# Keras' functional spellings of the merges (`layers.add([a, b])`) and the classes they make.
MERGE_FUNCTIONS = {"add": "Add", "multiply": "Multiply", "concatenate": "Concatenate"}
MODEL_FUNCTIONS = ("Model", "Functional")


# Keras functions of tensors that are spec layers, with the layer class they read as.
TENSOR_FUNCTIONS = {"add": "Add", "multiply": "Multiply", "concatenate": "Concatenate"}
SHAPE_FUNCTIONS = frozenset({"int_shape", "shape"})  # K.int_shape(x), keras.ops.shape(x), tf.shape(x)
# `keras.applications.<module>.preprocess_input(x)` on a tensor, by the mode Keras gives each module:
# "tf" scales to [-1, 1] (a `rescale`), "none" passes the input through (the model does it), the
# others (a BGR flip with means, per-channel statistics) have no spec line.
APPLICATION_PREPROCESSING = {
    **dict.fromkeys(
        ("mobilenet", "mobilenet_v2", "resnet_v2", "xception", "inception_v3", "inception_resnet_v2", "nasnet"), "tf"
    ),
    **dict.fromkeys(("efficientnet", "efficientnet_v2", "convnext", "mobilenet_v3"), "none"),
    **dict.fromkeys(("vgg16", "vgg19", "resnet", "resnet50"), "caffe: a flip to BGR and per-channel means"),
    "densenet": "torch: per-channel means and standard deviations",
}
# Keras' own answers to questions a script asks while it builds a model.
CONSTANT_FUNCTIONS = {"image_data_format": "channels_last", "floatx": "float32", "backend": "jax"}


class KerasModels:
    """Mixed into the importer, which provides `graph`, `source`, `input_shape`, `applied`, `error`,
    `here` (where a model made at a node is placed) and `placed` (where a layer is)."""

    def keras_call(self, path: str, node: ast.Call, args: list, kwargs: dict, env: dict) -> Any:
        last = path.split(".")[-1]
        tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, Tensor)]
        if last == "Sequential":
            model = Sequential(self.here(node))
            items = args[0] if args else kwargs.get("layers") or []
            if not isinstance(items, (list, tuple)):
                raise self.error("`Sequential` takes a list of layers", node)
            elements = _elements(node)
            for index, item in enumerate(items):
                if isinstance(item, Unknown):  # a data-augmentation block the model may never use
                    model.broken = model.broken or item.error
                    continue
                self.add_to(model, item, elements[index] if len(elements) == len(items) else node)
            return model
        if last in MODEL_FUNCTIONS:
            return self.functional(node, args, kwargs)
        if last == "Input":
            if isinstance(kwargs.get("tensor"), Tensor):  # `layers.Input(tensor=input_tensor)`: that tensor
                return kwargs["tensor"]
            shape = kwargs.get("shape", args[0] if args else None)
            return Tensor(self.read_input({"shape": shape}, span_of(node), {"shape": _arg_span(node, "shape", 0)}))
        if last in MERGE_FUNCTIONS and ".ops." not in f".{path}.":
            merged = LayerObject(MERGE_FUNCTIONS[last], dict(kwargs), {}, span_of(node))
            return self.apply_layer(merged, args[0] if args else kwargs.get("inputs"), node)
        if last in CONSTANT_FUNCTIONS:
            return CONSTANT_FUNCTIONS[last]
        if last in SHAPE_FUNCTIONS and len(args) == 1 and isinstance(args[0], Tensor):
            return self.shape_of(args[0])
        if last == "is_keras_tensor":
            return bool(args) and isinstance(args[0], Tensor)
        if last == "get_source_inputs":
            return list(args[:1])
        if last in ("obtain_input_shape", "_obtain_input_shape"):  # Keras 3, keras_applications
            return _obtain_input_shape(*args, **kwargs)
        if last == "correct_pad" and len(args) > 1 and isinstance(args[1], Tensor):  # keras_applications'
            args = args[1:]  # (backend, inputs, kernel_size)
        if last == "correct_pad" and args and isinstance(args[0], Tensor):
            return _correct_pad(self.shape_of(args[0]), *args[1:], **kwargs)
        if last == "get_submodules_from_kwargs" and len(args) == 1 and isinstance(args[0], dict):
            # keras_applications: the Keras modules the caller passed (Keras 2 set defaults; Keras 3 none)
            return tuple(args[0].get(name) for name in ("backend", "layers", "models", "utils"))
        if last == "preprocess_input" and ".applications." in f".{path}." and args and isinstance(args[0], Tensor):
            return self.preprocessing(path.split(".")[-2], args[0], node)
        if tensors:
            return self.tensor_function(path, last, node, args, kwargs)
        if last == "Lambda":
            function = args[0] if args else kwargs.get("function")
            if not isinstance(function, Function):
                raise self.error("a `Lambda` layer is followed when it wraps a function of the script", node)
            arguments = kwargs.get("arguments") or {}
            return LayerObject("Lambda", {"function": function, "arguments": arguments}, {}, span_of(node))
        if last in keras_kinds() or last in IDENTITY_AT_INFERENCE or last == "Reshape":
            return self.layer_object(last, node, args, kwargs)
        if ".applications." in f".{path}.":
            return Unknown(
                self.error(
                    f"`{path}` builds a Keras application, which is read from a saved model, not from source",
                    node,
                    hint="save it (`model.save('m.keras')`) and read the .keras file, or use `cnn-arch import --run`",
                )
            )
        if last[:1].isupper() and (".layers." in f".{path}." or last.endswith(("Layer", "2D", "1D", "3D"))):
            return Unknown(
                self.error(f"`{last}` is not a Keras layer the spec language has", node.func, hint=kinds_hint())
            )
        # Anything else of Keras (optimizers, callbacks, datasets, initializers): an error only if needed.
        return Unknown(self.error(f"`{path}` is not a layer or model the importer follows", node.func))

    def preprocessing(self, module: str, tensor: Tensor, node: ast.Call) -> Tensor:
        mode = APPLICATION_PREPROCESSING.get(module)
        if mode == "tf":  # x / 127.5 - 1
            return self.tensor_arithmetic(1 / 127.5, -1.0, node, tensor)
        if mode == "none":
            return tensor
        what = f" ({mode})" if mode else ""
        raise self.error(f"`{module}.preprocess_input`{what} has no spec equivalent", node)

    def tensor_function(self, path: str, last: str, node: ast.Call, args: list, kwargs: dict) -> Any:
        """A Keras (or TensorFlow) function applied to tensors: an activation, a merge, a reshape."""
        first = args[0] if args else None
        if last in ACTIVATION_FUNCTIONS and isinstance(first, Tensor) and len(args) == 1:
            config = {"activation": last} if last != "leaky_relu" else {"activation": "leaky_relu"}
            return self.apply_layer(LayerObject("Activation", config, {}, span_of(node)), first, node)
        if last in TENSOR_FUNCTIONS:
            if last == "concatenate":
                merged = LayerObject(
                    "Concatenate", {"axis": kwargs.get("axis", args[1] if len(args) > 1 else 0)}, {}, span_of(node)
                )
                return self.apply_layer(merged, first, node)
            if len(args) == 2:
                return self.tensor_binary_call(TENSOR_FUNCTIONS[last], args[0], args[1], node)
        if last in ("mean", "max", "reduce_mean", "reduce_max") and isinstance(first, Tensor):
            axis = kwargs.get("axis", args[1] if len(args) > 1 else None)
            if axis is not None and tuple(axis) in ((1, 2), (-3, -2)):
                pooled = "GlobalAveragePooling2D" if "mean" in last else "GlobalMaxPooling2D"
                layer = LayerObject(pooled, {"keepdims": bool(kwargs.get("keepdims", False))}, {}, span_of(node))
                return self.apply_layer(layer, first, node)
        if last == "reshape" and isinstance(first, Tensor):
            shape = kwargs.get("newshape", kwargs.get("shape", args[1] if len(args) > 1 else None))
            shape = (
                tuple(shape)[1:]
                if isinstance(shape, (tuple, list)) and len(shape) > 1 and shape[0] in (-1, None)
                else shape
            )
            return self.apply_layer(LayerObject("Reshape", {"target_shape": shape}, {}, span_of(node)), first, node)
        raise self.error(
            f"`{path}` on a tensor has no spec equivalent", node, hint="the spec's layers: " + kinds_hint()
        )

    def functional(self, node: ast.Call, args: list, kwargs: dict) -> Functional:
        inputs = args[0] if args else kwargs.get("inputs")
        outputs = args[1] if len(args) > 1 else kwargs.get("outputs")
        for value in (inputs, outputs):
            if isinstance(value, Unknown):
                raise value.error
        inputs = inputs[0] if isinstance(inputs, (list, tuple)) and len(inputs) == 1 else inputs
        outputs = outputs[0] if isinstance(outputs, (list, tuple)) and len(outputs) == 1 else outputs
        if not isinstance(inputs, Tensor) or not isinstance(outputs, Tensor):
            raise self.error("a model needs one input tensor and one output tensor", node)
        return Functional(outputs, self.here(node))

    def layer_object(self, keras: str, node: ast.Call, args: list, kwargs: dict) -> LayerObject:
        kind = keras_kinds().get(keras)
        order = kind.keras_parameters(keras) if kind is not None else ("target_shape",) if keras == "Reshape" else ()
        if len(args) > len(order) and keras not in IDENTITY_AT_INFERENCE:
            raise self.error(f"`{keras}` takes at most {len(order)} positional arguments", node.args[len(order)])
        bound = dict(zip(order, args))
        spans = {name: span_of(a) for name, a in zip(order, node.args)}
        for keyword in node.keywords:
            spans[keyword.arg] = span_of(keyword)
        for name, value in kwargs.items():
            if name in ("input_shape", "batch_input_shape") and isinstance(value, (tuple, list)):
                bound["input_shape"] = tuple(value) if name == "input_shape" else tuple(value)[1:]
                spans["input_shape"] = spans[name]
            elif name != "batch_size":
                bound[name] = value
        return LayerObject(keras, bound, spans, span_of(node))

    def add_to(self, model: Sequential, value: Any, node: ast.AST) -> None:
        """Append a layer to a Sequential model; `keras.Input(...)` first gives its input shape."""
        if isinstance(value, Unknown):
            raise value.error
        if isinstance(value, Tensor) and not self.graph.layers[value.node].inputs and not model.layers:
            model.input = value
        elif isinstance(value, (LayerObject, Sequential, Instance)):
            model.layers.append(value)
        else:
            raise self.error("expected a Keras layer here", node)

    # --- building the graph --------------------------------------------------------------------

    def read_input(self, config: dict, span: Span, spans: dict[str, Span]) -> int:
        if self.input_shape is not None:  # --input: also fills a shape the code leaves open
            config = {"shape": self.input_shape}
        return self.read_layer(LayerObject("InputLayer", config, spans, span), ())

    def read_layer(self, layer: LayerObject, inputs: tuple[int, ...], where: Span | None = None) -> int:
        """Read `layer` on `inputs` into the graph; what it cannot say is an error at the argument."""
        config = {k: v for k, v in layer.args.items() if k != "input_shape"}
        name = config.get("name") if isinstance(config.get("name"), str) else ""
        origin, made = self.placed(layer.span)
        try:
            if layer.keras == "Reshape":
                return self.graph.reshape(config, inputs, origin=origin, made=made, name=name)
            return self.graph.read(layer.keras, config, inputs, origin=origin, made=made, name=name)
        except Untranslatable as problem:
            span = layer.spans.get(problem.argument, where or layer.span) if problem.argument else where or layer.span
            raise SpecError(problem.message, span, hint=problem.hint, source=self.source) from None

    def apply_layer(self, layer: LayerObject | Sequential | Instance, value: Any, node: ast.Call | None) -> Tensor:
        if isinstance(value, Unknown):
            raise value.error
        if isinstance(layer, Sequential):
            if layer.broken is not None:
                raise layer.broken
            current = value
            for inner in layer.layers:
                current = self.apply_layer(inner, current, node)
            return current
        if isinstance(layer, Instance):
            return self.call_instance(layer, [value], {}, node)
        where = span_of(node) if node is not None else layer.span
        function = layer.args.get("function") if layer.keras == "Lambda" else layer.args.get("activation")
        if isinstance(function, Function):  # `Lambda(f)`, `activation=f`: the script's function, on the tensor
            if layer.keras in ("Lambda", "Activation"):
                return self.call_function(function, [value], dict(layer.args.get("arguments") or {}), where)
            plain = LayerObject(layer.keras, {**layer.args, "activation": None}, layer.spans, layer.span)
            # held, so that its id marks it used and no later layer object gets that id (`plain` holds
            # its own); holding only `plain` let a freed layer's id come back and read as applied twice
            self.applied[id(layer)] = layer
            return self.call_function(function, [self.apply_layer(plain, value, node)], {}, where)
        kind = keras_kinds().get(layer.keras)
        if kind is not None and kind.family == "merge":
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, Tensor) for v in value) or len(value) < 2:
                raise SpecError(f"`{layer.keras}` merges a list of at least two tensors", where, source=self.source)
            return Tensor(self.read_layer(layer, tuple(v.node for v in value), where))
        if not isinstance(value, Tensor):
            raise SpecError(
                "a layer is applied to a tensor from `keras.Input` or another layer", where, source=self.source
            )
        if layer.keras not in IDENTITY_AT_INFERENCE:
            if id(layer) in self.applied:  # the same weights used twice: the spec has no shared layers
                raise SpecError(
                    f"this `{layer.keras}` is applied a second time here (shared weights); a spec layer is used once",
                    where,
                    hint="make one layer object per use",
                    source=self.source,
                )
            self.applied[id(layer)] = layer
        return Tensor(self.read_layer(layer, (value.node,), where))

    def sequential_graph(self, model: Sequential) -> int:
        if model.broken is not None:
            raise model.broken
        layers = list(_flat(model.layers))
        if model.input is not None:
            current = model.input.node
        else:
            first = layers[0] if layers else None
            if isinstance(first, Instance):
                first = None
            if first is not None and first.keras == "InputLayer":
                layers = layers[1:]
                shape = first.args.get("shape", first.args.get("input_shape"))
            else:
                shape = first.args.get("input_shape") if first is not None else None
            if shape is None and self.input_shape is None:
                raise SpecError(
                    "the Sequential model has no input shape",
                    model.span,
                    hint="start it with `keras.Input(shape=(H, W, C))`, or pass --input HxWxC",
                    source=self.source,
                )
            span = first.spans.get("input_shape", first.span) if first is not None else model.span
            current = self.read_input({"shape": shape}, span, {"shape": span})
        for layer in layers:
            if isinstance(layer, Instance):
                current = self.call_instance(layer, [Tensor(current)], {}, None).node
                continue
            kind = keras_kinds().get(layer.keras)
            if layer.keras == "InputLayer" or (kind is not None and kind.family == "merge"):
                raise SpecError(
                    f"`{layer.keras}` cannot be a layer of a Sequential model", layer.span, source=self.source
                )
            current = self.apply_layer(layer, Tensor(current), None).node
        return current

    # --- tensors in expressions -------------------------------------------------------------------

    def shape_of(self, tensor: Tensor) -> KerasShape:
        """`x.shape`: the batch (None) and the tensor's shape."""
        return KerasShape((None, *self.graph.layers[tensor.node].shape))

    def tensor_binary(self, node: ast.BinOp, left: Any, right: Any) -> Tensor:
        """`x + y`, `x * y` on tensors are merges; `x * 0.5`, `x + 3`, `x / 6`, `1 - x` a `rescale`."""
        operator = {ast.Add: "Add", ast.Mult: "Multiply", ast.Sub: "Subtract", ast.Div: "Divide"}.get(type(node.op))
        if operator is None:
            raise self.error(f"cannot follow `{type(node.op).__name__}` on a tensor", node)
        return self.tensor_binary_call(operator, left, right, node)

    def tensor_binary_call(self, operator: str, left: Any, right: Any, node: ast.AST) -> Tensor:
        if isinstance(left, Tensor) and isinstance(right, Tensor):
            if operator not in ("Add", "Multiply"):
                raise self.error(f"`{operator.lower()}` of two tensors has no spec equivalent", node)
            return self.apply_layer(LayerObject(operator, {}, {}, span_of(node)), [left, right], node)
        tensor, number = (left, right) if isinstance(left, Tensor) else (right, left)
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise self.error("cannot compute this with a tensor (only a number or another tensor)", node)
        if operator in ("Subtract", "Divide") and tensor is right:
            if operator == "Divide":
                raise self.error("a number divided by a tensor has no spec equivalent", node)
            return self.tensor_arithmetic(-1.0, float(number), node, tensor)
        scale, offset = {
            "Add": (1.0, float(number)),
            "Subtract": (1.0, -float(number)),
            "Multiply": (float(number), 0.0),
            "Divide": (1.0 / number if number else float("inf"), 0.0),
        }[operator]
        return self.tensor_arithmetic(scale, offset, node, tensor)

    def tensor_arithmetic(self, scale: float, offset: float, node: ast.AST, tensor: Tensor) -> Tensor:
        layer = LayerObject("Rescaling", {"scale": scale, "offset": offset}, {}, span_of(node))
        return self.apply_layer(layer, tensor, node)

    def tensor_index(self, tensor: Tensor, key: Any, node: ast.AST) -> Tensor:
        """`x[..., a:b]`: a slice of the channels; `x[:, None, None, :]` on a vector: a reshape to 1x1xC."""
        whole = slice(None)
        if key == (whole, None, None, whole) and len(self.shape_of(tensor)) == 2:
            target = (1, 1, self.shape_of(tensor)[-1])
            return self.apply_layer(LayerObject("Reshape", {"target_shape": target}, {}, span_of(node)), tensor, node)
        return self.apply_layer(LayerObject("GetItem", {"key": key}, {}, span_of(node)), tensor, node)

    def applied_once(self, instance: Instance, node: ast.AST | None) -> None:
        if id(instance) in self.applied:
            where = span_of(node) if node is not None else instance.span
            raise SpecError(
                f"this `{instance.cls.node.name}` is applied a second time here (shared weights); a spec layer is "
                "used once",
                where,
                source=self.source,
            )
        self.applied[id(instance)] = instance


def _obtain_input_shape(input_shape, default_size, min_size=None, data_format=None, require_flatten=True, weights=None):
    """Keras applications' `imagenet_utils.obtain_input_shape` (channels last): the given shape, else
    the default size (a free size when the model ends without a flatten)."""
    if weights == "imagenet" and require_flatten:
        return (default_size, default_size, 3)
    if input_shape:
        return tuple(input_shape)
    return (default_size, default_size, 3) if require_flatten else (None, None, 3)


def _correct_pad(shape: tuple, kernel_size) -> tuple:
    """Keras applications' `imagenet_utils.correct_pad` (channels last): the zero padding before a
    strided convolution that keeps TensorFlow's `same` alignment."""
    kernel = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
    height, width = shape[1:3]
    adjust = (1, 1) if height is None else (1 - height % 2, 1 - width % 2)
    correct = (kernel[0] // 2, kernel[1] // 2)
    return ((correct[0] - adjust[0], correct[0]), (correct[1] - adjust[1], correct[1]))


def _flat(layers):
    """The layers of nested Sequential models (a data-augmentation block inside the model) in order."""
    for layer in layers:
        if isinstance(layer, Sequential):
            if layer.broken is not None:
                raise layer.broken
            yield from _flat(layer.layers)
        else:
            yield layer


def _elements(node: ast.Call) -> list[ast.expr]:
    listing = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "layers"), None)
    return list(listing.elts) if isinstance(listing, (ast.List, ast.Tuple)) else []


def _arg_span(node: ast.Call, keyword: str, position: int) -> Span:
    for item in node.keywords:
        if item.arg == keyword:
            return span_of(item)
    return span_of(node.args[position]) if len(node.args) > position else span_of(node)
