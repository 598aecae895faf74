"""The Keras side of the source reader: Keras calls become layers, tensors and models, and models
become nodes of the layer graph (`keras_graph`), which each layer kind reads (`read_keras`)."""

from __future__ import annotations

import ast
from typing import Any

from archspec.errors import Span, SpecError
from archspec.interop.keras_graph import IDENTITY_AT_INFERENCE, keras_kinds, kinds_hint
from archspec.interop.keras_values import Functional, LayerObject, Sequential, Tensor, span_of
from archspec.layers import Untranslatable

# Keras' functional spellings of the merges (`layers.add([a, b])`) and the classes they make.
MERGE_FUNCTIONS = {"add": "Add", "multiply": "Multiply", "concatenate": "Concatenate"}
MODEL_FUNCTIONS = ("Model", "Functional")


class KerasModels:
    """Mixed into the importer, which provides `graph`, `source`, `input_shape`, `applied` and `error`."""

    def keras_call(self, path: str, node: ast.Call, args: list, kwargs: dict, env: dict) -> Any:
        last = path.split(".")[-1]
        if last == "Sequential":
            model = Sequential(span_of(node))
            items = args[0] if args else kwargs.get("layers") or []
            if not isinstance(items, (list, tuple)):
                raise self.error("`Sequential` takes a list of layers", node)
            elements = _elements(node)
            for index, item in enumerate(items):
                self.add_to(model, item, elements[index] if len(elements) == len(items) else node)
            return model
        if last in MODEL_FUNCTIONS:
            return self.functional(node, args, kwargs)
        if last == "Input":
            shape = kwargs.get("shape", args[0] if args else None)
            return Tensor(self.read_input({"shape": shape}, span_of(node), {"shape": _arg_span(node, "shape", 0)}))
        if last in MERGE_FUNCTIONS:
            merged = LayerObject(MERGE_FUNCTIONS[last], dict(kwargs), {}, span_of(node))
            return self.apply_layer(merged, args[0] if args else kwargs.get("inputs"), node)
        if last in keras_kinds() or last in IDENTITY_AT_INFERENCE or last == "Reshape":
            return self.layer_object(last, node, args, kwargs)
        raise self.error(f"`{last}` is not a Keras layer the spec language has", node.func, hint=kinds_hint())

    def functional(self, node: ast.Call, args: list, kwargs: dict) -> Functional:
        inputs = args[0] if args else kwargs.get("inputs")
        outputs = args[1] if len(args) > 1 else kwargs.get("outputs")
        inputs = inputs[0] if isinstance(inputs, (list, tuple)) and len(inputs) == 1 else inputs
        outputs = outputs[0] if isinstance(outputs, (list, tuple)) and len(outputs) == 1 else outputs
        if not isinstance(inputs, Tensor) or not isinstance(outputs, Tensor):
            raise self.error("a model needs one input tensor and one output tensor", node)
        return Functional(outputs, span_of(node))

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
        if isinstance(value, Tensor) and not self.graph.layers[value.node].inputs and not model.layers:
            model.input = value
        elif isinstance(value, (LayerObject, Sequential)):
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
        try:
            if layer.keras == "Reshape":
                return self.graph.reshape(config, inputs, origin=layer.span, name=name)
            return self.graph.read(layer.keras, config, inputs, origin=layer.span, name=name)
        except Untranslatable as problem:
            span = layer.spans.get(problem.argument, where or layer.span) if problem.argument else where or layer.span
            raise SpecError(problem.message, span, hint=problem.hint, source=self.source) from None

    def apply_layer(self, layer: LayerObject | Sequential, value: Any, node: ast.Call | None) -> Tensor:
        if isinstance(layer, Sequential):
            current = value
            for inner in layer.layers:
                current = self.apply_layer(inner, current, node)
            return current
        where = span_of(node) if node is not None else layer.span
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
        layers = list(_flat(model.layers))
        if model.input is not None:
            current = model.input.node
        else:
            first = layers[0] if layers else None
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
            kind = keras_kinds().get(layer.keras)
            if layer.keras == "InputLayer" or (kind is not None and kind.family == "merge"):
                raise SpecError(
                    f"`{layer.keras}` cannot be a layer of a Sequential model", layer.span, source=self.source
                )
            current = self.apply_layer(layer, Tensor(current), None).node
        return current


def _flat(layers):
    """The layers of nested Sequential models (a data-augmentation block inside the model) in order."""
    for layer in layers:
        if isinstance(layer, Sequential):
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
