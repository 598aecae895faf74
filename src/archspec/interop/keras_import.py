"""Read Keras model-building code by static analysis of its syntax tree: no TensorFlow or Keras is
imported and no user code runs. A small evaluator follows literals, names, tuples, loops over
literal ranges, user functions and the Sequential, `model.add` and functional styles; whatever it
cannot follow is reported at its Python line and column once the model needs it, never guessed.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from archspec.errors import SourceText, Span, SpecError
from archspec.interop import keras_layers as table
from archspec.interop.keras_graph import ImportedSpec, Layer, LayerGraph, write_spec

KERAS_ROOTS = ("keras", "tensorflow", "tf_keras")
MAX_STEPS = 200_000
MAX_CALL_DEPTH = 32  # statements and calls evaluated: any real model file is far below


@dataclass(frozen=True)
class Unknown:
    """A value the importer could not follow, with the error to report if the model needs it."""

    error: SpecError


@dataclass(frozen=True)
class KerasName:
    """A module, class or function of Keras, by dotted path (`keras.layers.Conv2D`)."""

    path: str


@dataclass(frozen=True)
class LayerObject:
    keras: str
    args: dict[str, Any]
    spans: dict[str, Span]  # where each argument was written
    span: Span


@dataclass(frozen=True)
class Tensor:
    node: int


@dataclass
class Sequential:
    span: Span
    layers: list[LayerObject | Sequential] = field(default_factory=list)
    input: Tensor | None = None


@dataclass(frozen=True)
class Functional:
    output: Tensor
    span: Span


@dataclass(frozen=True)
class Function:
    node: ast.FunctionDef


class _Return(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value


def import_keras(text: str, name: str, model: str | None = None, input_shape: tuple | None = None) -> ImportedSpec:
    """The spec of the model built by Keras source `text` (the last one, or the one named `model`).

    `input_shape` (HxWxC) stands in for an input shape the code leaves open. Raises `SpecError` at
    the Python line and column of what cannot be translated.
    """
    return _Importer(text, name, input_shape).run(model)


def imported_models(text: str, name: str, input_shape: tuple | None = None) -> list[ImportedSpec]:
    """Every model the source builds at its top level, in order (a notebook may build several)."""
    importer = _Importer(text, name, input_shape)
    return [importer.translate(n, value) for n, value in importer.models()]


class _Importer:
    def __init__(self, text: str, name: str, input_shape: tuple | None) -> None:
        self.source = SourceText(name, text)
        self.name = name
        self.input_shape = input_shape
        self.graph = LayerGraph()
        self.env: dict[str, Any] = {}
        self.steps = 0
        self.depth = 0
        try:
            self.tree = ast.parse(text, filename=name)
        except SyntaxError as error:
            span = Span(error.lineno or 1, error.offset or 1)
            raise SpecError(f"not valid Python: {error.msg}", span, source=self.source) from None
        self.found: list[tuple[str, Any]] = []
        for statement in self.tree.body:
            self.statement(statement, self.env, top=True)

    # --- choosing the model ----------------------------------------------------------------------

    def models(self) -> list[tuple[str, Any]]:
        found = {n: v for n, v in self.found}
        if not found:  # only a builder function: call the ones that need no arguments
            for n, value in list(self.env.items()):
                if isinstance(value, Function) and not _required(value.node):
                    result = self.call_function(value, [], {}, _span(value.node))
                    if isinstance(result, (Sequential, Functional)):
                        found[n] = result
        return list(found.items())

    def run(self, model: str | None) -> ImportedSpec:
        models = self.models()
        if not models:
            raise SpecError(
                "no Keras model found: expected `keras.Sequential(...)` or `keras.Model(inputs, outputs)` "
                "assigned at the top level, or a function without arguments that returns one",
                Span(1, 1),
                source=self.source,
            )
        if model is None:
            return self.translate(*models[-1])
        for n, value in models:
            if n == model:
                return self.translate(n, value)
        raise SpecError(
            f"no model named `{model}`",
            Span(1, 1),
            hint=f"models: {', '.join(n for n, _ in models)}",
            source=self.source,
        )

    def translate(self, name: str, value: Any) -> ImportedSpec:
        if isinstance(value, Sequential):
            output, span = self.sequential_graph(value), value.span
        else:
            output, span = value.output.node, value.span
        return write_spec(self.graph, output, self.name, name, span, self.source)

    # --- statements --------------------------------------------------------------------------

    def statement(self, node: ast.stmt, env: dict, top: bool = False) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise self.error("the code runs too long to follow (a loop without a small literal bound?)", node)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            self.imports(node, env)
        elif isinstance(node, ast.FunctionDef):
            env[node.name] = Function(node)
        elif isinstance(node, ast.Assign):
            value = self.assigned(node.value, env)
            for target in node.targets:
                self.assign(target, value, env, top)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            self.assign(node.target, self.assigned(node.value, env), env, top)
        elif isinstance(node, ast.AugAssign):
            self.assign(node.target, self.assigned(ast.BinOp(node.target, node.op, node.value), env), env, top)
        elif isinstance(node, ast.Expr):
            self.expression_statement(node.value, env)
        elif isinstance(node, ast.For):
            self.loop(node, env, top)
        elif isinstance(node, ast.If):
            test = self.lazy(node.test, env)
            if isinstance(test, Unknown):
                if self.touches_model(node, env):
                    raise self.error("cannot tell which branch of this `if` builds the model", node.test)
                return
            for inner in node.body if test else node.orelse:
                self.statement(inner, env, top)
        elif isinstance(node, ast.Return):
            raise _Return(self.value(node.value, env) if node.value is not None else None)
        elif isinstance(node, (ast.While, ast.With, ast.Try, ast.ClassDef)) and self.touches_model(node, env):
            raise self.error(f"cannot follow a `{type(node).__name__.lower()}` statement that builds the model", node)

    def imports(self, node: ast.Import | ast.ImportFrom, env: dict) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in KERAS_ROOTS:
                    bound = alias.asname or alias.name.split(".")[0]
                    env[bound] = KerasName(alias.name if alias.asname else bound)
            return
        module = node.module or ""
        if module.split(".")[0] in KERAS_ROOTS:
            for alias in node.names:
                env[alias.asname or alias.name] = KerasName(f"{module}.{alias.name}")

    def assigned(self, node: ast.expr, env: dict) -> Any:
        """An assigned value: one that builds layers or models must be followed (its error is the
        user's to see now); any other may stay unknown until the model needs it."""
        return self.value(node, env) if self.touches_model(node, env) else self.lazy(node, env)

    def assign(self, target: ast.expr, value: Any, env: dict, top: bool) -> None:
        if isinstance(target, ast.Name):
            env[target.id] = value
            if top and isinstance(value, (Sequential, Functional)):
                self.found = [(n, v) for n, v in self.found if n != target.id] + [(target.id, value)]
        elif isinstance(target, (ast.Tuple, ast.List)):
            items = value if isinstance(value, (tuple, list)) and len(value) == len(target.elts) else None
            for index, element in enumerate(target.elts):
                self.assign(element, items[index] if items is not None else self._unknown(value, element), env, top)

    def _unknown(self, value: Any, node: ast.AST) -> Unknown:
        return value if isinstance(value, Unknown) else Unknown(self.error("cannot unpack this value", node))

    def expression_statement(self, node: ast.expr, env: dict) -> None:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = self.lazy(node.func.value, env)
            if isinstance(owner, Sequential) and node.func.attr == "add":
                if len(node.args) != 1 or node.keywords:
                    raise self.error("`add` takes one layer", node)
                self.add_to(owner, self.value(node.args[0], env), node.args[0])
                return
        if isinstance(node, ast.Call) and isinstance(self.lazy(node.func, env), Function):
            self.value(node, env)  # a user function that may add layers to a model it is given
        # Anything else (print, data loading, model.compile, model.fit) does not change the architecture.

    def loop(self, node: ast.For, env: dict, top: bool) -> None:
        iterable = self.lazy(node.iter, env)
        if isinstance(iterable, Unknown) or not isinstance(iterable, (tuple, list, range)):
            if self.touches_model(node, env):
                if isinstance(iterable, Unknown):
                    raise iterable.error
                raise self.error("cannot unroll this loop: its range is not a literal list or range", node.iter)
            return
        if node.orelse:
            raise self.error("cannot follow a `for ... else` loop", node)
        for item in iterable:
            self.assign(node.target, item, env, top)
            for inner in node.body:
                self.statement(inner, env, top)

    def touches_model(self, node: ast.AST, env: dict) -> bool:
        """Whether `node` mentions a tensor, layer, model or Keras name (so it may build the model)."""
        for child in ast.walk(node):
            if isinstance(child, ast.Name):
                value = env.get(child.id)
                if isinstance(value, (Tensor, LayerObject, Sequential, Functional, KerasName, Function)):
                    return True
        return False

    # --- expressions ---------------------------------------------------------------------------

    def lazy(self, node: ast.expr, env: dict) -> Any:
        """The value, or an `Unknown` holding the error (raised only if the model needs the value)."""
        try:
            return self.value(node, env)
        except SpecError as error:
            return Unknown(error)

    def value(self, node: ast.expr, env: dict) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in env:
                raise self.error(f"`{node.id}` is not a value the importer can follow", node)
            found = env[node.id]
            if isinstance(found, Unknown):
                raise found.error
            return found
        if isinstance(node, (ast.Tuple, ast.List)):
            items = [self.value(e, env) for e in node.elts]
            return tuple(items) if isinstance(node, ast.Tuple) else items
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
            operand = self.value(node.operand, env)
            return _apply(
                self,
                node,
                {ast.USub: lambda a: -a, ast.UAdd: lambda a: +a, ast.Not: lambda a: not a}[type(node.op)],
                operand,
            )
        if isinstance(node, ast.BinOp):
            left, right = self.value(node.left, env), self.value(node.right, env)
            return (
                _apply(self, node, _BINARY[type(node.op)], left, right) if type(node.op) in _BINARY else self._no(node)
            )
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
            left, right = self.value(node.left, env), self.value(node.comparators[0], env)
            return _apply(self, node, _COMPARE[type(node.ops[0])], left, right)
        if isinstance(node, ast.Attribute):
            owner = self.value(node.value, env)
            if isinstance(owner, KerasName):
                return KerasName(f"{owner.path}.{node.attr}")
            error = self.error(f"cannot follow the attribute `.{node.attr}`", node)
            if isinstance(owner, (Sequential, Functional, Tensor, LayerObject)):
                return Unknown(error)  # `model.fit`, `x.shape`: an error only if the model needs it
            raise error
        if isinstance(node, ast.Call):
            return self.call(node, env)
        if isinstance(node, ast.Subscript):
            return _apply(self, node, lambda a, i: a[i], self.value(node.value, env), self.value(node.slice, env))
        return self._no(node)

    def _no(self, node: ast.AST):
        raise self.error(f"cannot translate this {type(node).__name__} expression", node)

    def call(self, node: ast.Call, env: dict) -> Any:
        func = self.value(node.func, env)
        if isinstance(func, Unknown):  # a method of a model or tensor: `history = model.fit(...)`
            return func
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            raise self.error("cannot follow `*args` or `**kwargs` in a call", node)
        args = [self.value(a, env) for a in node.args]
        kwargs = {k.arg: self.value(k.value, env) for k in node.keywords}
        if isinstance(func, Function):
            return self.call_function(func, args, kwargs, _span(node))
        if isinstance(func, KerasName):
            return self.keras_call(func.path, node, args, kwargs, env)
        if isinstance(func, (LayerObject, Sequential)):
            if len(args) != 1 or kwargs:
                raise self.error("a layer is called on one tensor", node)
            return self.apply_layer(func, args[0], node)
        if node.func.__class__ is ast.Name and node.func.id in _BUILTINS and node.func.id not in env:
            return _apply(self, node, _BUILTINS[node.func.id], *args, **kwargs)
        raise self.error("cannot translate this call", node.func)

    def call_function(self, function: Function, args: list, kwargs: dict, span: Span) -> Any:
        definition = function.node
        params = definition.args
        if params.vararg or params.kwarg or params.posonlyargs:
            raise SpecError("cannot follow a function with *args or **kwargs", span, source=self.source)
        positional = [a.arg for a in params.args]
        names = positional + [a.arg for a in params.kwonlyargs]
        if len(args) > len(positional):
            raise SpecError(
                f"`{definition.name}` takes {len(positional)} positional arguments", span, source=self.source
            )
        given = dict(zip(positional, args))
        for name, value in kwargs.items():
            if name not in names:
                raise SpecError(f"`{definition.name}` has no parameter `{name}`", span, source=self.source)
            given[name] = value
        defaults = dict(zip(positional[::-1], params.defaults[::-1]))
        defaults.update({a.arg: d for a, d in zip(params.kwonlyargs, params.kw_defaults) if d is not None})
        for name in names:
            if name not in given:
                if name not in defaults:
                    raise SpecError(f"`{definition.name}` needs `{name}`", span, source=self.source)
                given[name] = self.value(defaults[name], self.env)
        if self.depth >= MAX_CALL_DEPTH:
            raise SpecError(f"function calls nested more than {MAX_CALL_DEPTH} deep", span, source=self.source)
        local = {**self.env, **given}  # module-level names, then the arguments
        self.depth += 1
        try:
            for inner in definition.body:
                self.statement(inner, local)
        except _Return as returned:
            return returned.value
        finally:
            self.depth -= 1
        return None

    def keras_call(self, path: str, node: ast.Call, args: list, kwargs: dict, env: dict) -> Any:
        last = path.split(".")[-1]
        if last == "Sequential":
            model = Sequential(_span(node))
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
            return Functional(outputs, _span(node))
        if last == "Input":
            text = self.input_text(kwargs.get("shape", args[0] if args else None), _span(node))
            return Tensor(self.graph.add(Layer(text, (), _span(node), "Input")))
        if last in table.MERGE_FUNCTIONS:
            merged = LayerObject(table.MERGE_FUNCTIONS[last], {k: v for k, v in kwargs.items()}, {}, _span(node))
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
        spans = {name: _span(a) for name, a in zip(order, node.args)}
        for keyword in node.keywords:
            spans[keyword.arg] = _span(keyword)
        for name, value in kwargs.items():
            if name == "input_shape" or (name == "batch_input_shape" and isinstance(value, (tuple, list))):
                bound["input_shape"] = tuple(value) if name == "input_shape" else tuple(value)[1:]
                continue
            if name in table.IGNORED or name == "batch_size":
                continue
            if name not in order and keras not in table.AUGMENTATION:
                raise SpecError(f"`{keras}` argument `{name}` has no spec equivalent", spans[name], source=self.source)
            bound[name] = value
        return LayerObject(keras, bound, spans, _span(node))

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
        where = _span(node) if node is not None else layer.span
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

    def error(self, message: str, node: ast.AST, hint: str | None = None) -> SpecError:
        return SpecError(message, _span(node), hint=hint, source=self.source)


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


def _required(definition: ast.FunctionDef) -> bool:
    args = definition.args
    return len(args.args) > len(args.defaults) or any(d is None for d in args.kw_defaults)


def _span(node: ast.AST) -> Span:
    line, column = getattr(node, "lineno", 1), getattr(node, "col_offset", 0) + 1
    end = getattr(node, "end_col_offset", None)
    same_line = getattr(node, "end_lineno", line) == line and end is not None
    return Span(line, column, end + 1 if same_line else None)


def _apply(importer: _Importer, node: ast.AST, function, *args, **kwargs):
    if any(isinstance(a, (Tensor, LayerObject, Sequential, Functional, KerasName, Function)) for a in args):
        raise importer.error("cannot translate arithmetic on tensors or layers", node)
    try:
        return function(*args, **kwargs)
    except Exception as error:  # the user's expression failing, e.g. 1/0 or a bad index
        raise importer.error(f"cannot evaluate this expression ({type(error).__name__}: {error})", node) from None


def _layers_hint() -> str:
    return "layers the spec has: " + ", ".join(sorted(table.LAYERS))


_BINARY = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
    ast.Pow: lambda a, b: a**b if abs(b) < 64 else 1 / 0,
}
_COMPARE = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
}
_BUILTINS = {
    "range": range,
    "len": len,
    "int": int,
    "float": float,
    "min": min,
    "max": max,
    "tuple": tuple,
    "list": list,
    "round": round,
    "abs": abs,
}
