"""The Keras side of the importer: Keras calls become layers, tensors and models, and models become
nodes of the layer graph that is written as a spec."""

from __future__ import annotations

import ast
from typing import Any

from archspec.errors import Span, SpecError
from archspec.interop import keras_layers as table
from archspec.interop.keras_graph import Layer
from archspec.interop.keras_values import Functional, LayerObject, Sequential, Tensor, span_of


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
        if last in ("Model", "Functional"):
            inputs = args[0] if args else kwargs.get("inputs")
            outputs = args[1] if len(args) > 1 else kwargs.get("outputs")
            if not isinstance(inputs, Tensor) or not isinstance(outputs, Tensor):
                raise self.error("a model needs one input tensor and one output tensor", node)
            return Functional(outputs, span_of(node))
        if last == "Input":
            text = self.input_text(kwargs.get("shape", args[0] if args else None), span_of(node))
            return Tensor(self.graph.add(Layer(text, (), span_of(node), "Input")))
        if last in table.MERGE_FUNCTIONS:
            merged = LayerObject(table.MERGE_FUNCTIONS[last], {k: v for k, v in kwargs.items()}, {}, span_of(node))
            return self.apply_layer(merged, args[0] if args else kwargs.get("inputs"), node)
        keras = table.ALIASES.get(last, last)
        if keras in table.LAYERS or keras in table.AUGMENTATION or keras == "InputLayer":
            return self.layer_object(keras, node, args, kwargs)
        raise self.error(f"`{last}` is not a Keras layer the spec language has", node.func, hint=_layers_hint())

    def layer_object(self, keras: str, node: ast.Call, args: list, kwargs: dict) -> LayerObject:
        order = table.LAYERS[keras][0] if keras in table.LAYERS else ("shape",)
        if len(args) > len(order):
            raise self.error(f"`{keras}` takes at most {len(order)} positional arguments", node.args[len(order)])
        bound = dict(zip(order, args))
        spans = {name: span_of(a) for name, a in zip(order, node.args)}
        for keyword in node.keywords:
            spans[keyword.arg] = span_of(keyword)
        for name, value in kwargs.items():
            if name == "input_shape" or (name == "batch_input_shape" and isinstance(value, (tuple, list))):
                bound["input_shape"] = tuple(value) if name == "input_shape" else tuple(value)[1:]
                continue
            if name in table.IGNORED or name == "batch_size":
                continue
            if name not in order and keras not in table.AUGMENTATION:
                raise SpecError(f"`{keras}` argument `{name}` has no spec equivalent", spans[name], source=self.source)
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

    def input_text(self, shape: Any, span: Span) -> str:
        if self.input_shape is not None:  # --input: also fills a shape the code leaves open
            return "input " + "x".join(map(str, self.input_shape))
        if shape is None or (isinstance(shape, (tuple, list)) and None in shape):
            raise SpecError(
                "the input shape is not fixed",
                span,
                hint="give every dimension a size, or pass --input HxWxC",
                source=self.source,
            )
        if not isinstance(shape, (tuple, list)) or not all(
            isinstance(d, int) and not isinstance(d, bool) for d in shape
        ):
            raise SpecError(f"the input shape must be a tuple of integers, got `{shape!r}`", span, source=self.source)
        return "input " + "x".join(map(str, shape))

    def apply_layer(self, layer: LayerObject | Sequential, value: Any, node: ast.Call | None) -> Tensor:
        if isinstance(layer, Sequential):
            current = value
            for inner in layer.layers:
                current = self.apply_layer(inner, current, node)
            return current
        where = span_of(node) if node is not None else layer.span
        if layer.keras in table.MERGES:
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, Tensor) for v in value) or len(value) < 2:
                raise SpecError(f"`{layer.keras}` merges a list of at least two tensors", where, source=self.source)
            text = self.translate_layer(layer)
            return Tensor(
                self.graph.add(Layer(text, tuple(v.node for v in value), layer.span, layer.keras, merge=True))
            )
        if not isinstance(value, Tensor):
            raise SpecError(
                "a layer is applied to a tensor from `keras.Input` or another layer", where, source=self.source
            )
        if layer.keras not in table.AUGMENTATION and layer.keras not in table.MERGES:
            if id(layer) in self.applied:  # the same weights used twice: the spec has no shared layers
                raise SpecError(
                    f"this `{layer.keras}` is applied a second time here (shared weights); a spec layer is used once",
                    where,
                    hint="make one layer object per use",
                    source=self.source,
                )
            self.applied[id(layer)] = layer
        text = None if layer.keras in table.AUGMENTATION else self.translate_layer(layer)
        return Tensor(self.graph.add(Layer(text, (value.node,), layer.span, layer.keras)))

    def translate_layer(self, layer: LayerObject) -> str:
        try:
            return table.LAYERS[layer.keras][1](layer.args)
        except table.Untranslatable as problem:
            span = layer.spans.get(problem.argument, layer.span) if problem.argument else layer.span
            raise SpecError(problem.message, span, hint=problem.hint, source=self.source) from None

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
            current = self.graph.add(Layer(self.input_text(shape, span), (), span, "input shape"))
        for layer in layers:
            if layer.keras in table.MERGES or layer.keras == "InputLayer":
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


def _layers_hint() -> str:
    return "layers the spec has: " + ", ".join(sorted(table.LAYERS))
