"""Read Keras model-building code by static analysis of its syntax tree: no TensorFlow or Keras is
imported and no user code runs. A small evaluator follows literals, names, tuples, loops over
literal ranges, user functions and the Sequential, `model.add` and functional styles; whatever it
cannot follow is reported at its Python line and column once the model needs it, never guessed.
"""

from __future__ import annotations

import ast
from typing import Any

from archspec.errors import SourceText, Span, SpecError
from archspec.interop.keras_graph import LayerGraph, write_spec
from archspec.interop.keras_models import KerasModels
from archspec.interop.keras_values import (
    BINARY,
    BUILTINS,
    COMPARE,
    MODEL_VALUES,
    UNARY,
    Function,
    Functional,
    KerasName,
    LayerObject,
    Return,
    Sequential,
    Tensor,
    Unknown,
    apply,
    span_of,
)
from archspec.interop.readers import ImportedSpec, ModelFile
from archspec.layers import Untranslatable

KERAS_ROOTS = ("keras", "tensorflow", "tf_keras")
MAX_STEPS = 200_000
MAX_CALL_DEPTH = 32  # statements and calls evaluated: any real model file is far below


def import_keras(text: str, name: str, model: str | None = None, input_shape: tuple | None = None) -> ImportedSpec:
    """The spec of the model built by Keras source `text` (the last one, or the one named `model`).

    `input_shape` (HxWxC) stands in for an input shape the code leaves open. Raises `SpecError` at
    the Python line and column of what cannot be translated.
    """
    return keras_models(text, name, input_shape).read(model)


def keras_models(text: str, name: str, input_shape: tuple | None = None) -> ModelFile:
    """The models the source builds at its top level, in order (a notebook may build several), or
    the ones functions without required arguments return when none is built at the top level."""
    importer = _Importer(text, name, input_shape)
    return ModelFile([n for n, _ in importer.models()], importer.run)


class _Importer(KerasModels):
    def __init__(self, text: str, name: str, input_shape: tuple | None) -> None:
        self.source = SourceText(name, text)
        self.name = name
        self.input_shape = input_shape
        self.graph = LayerGraph()
        self.env: dict[str, Any] = {}
        self.steps = 0
        self.depth = 0
        self.applied: dict[int, LayerObject] = {}  # layers applied so far, by id (held, so ids stay unique)
        try:
            self.tree = ast.parse(text, filename=name)
        except SyntaxError as error:
            span = Span(error.lineno or 1, error.offset or 1)
            raise SpecError(f"not valid Python: {error.msg}", span, source=self.source) from None
        self.found: list[tuple[str, Any]] = []
        self._models: list[tuple[str, Any]] | None = None
        for statement in self.tree.body:
            self.statement(statement, self.env, top=True)

    # --- choosing the model ----------------------------------------------------------------------

    def models(self) -> list[tuple[str, Any]]:
        if self._models is None:
            found = {n: v for n, v in self.found}
            if not found:  # only a builder function: call the ones that need no arguments
                for n, value in list(self.env.items()):
                    if isinstance(value, Function) and not _required(value.node):
                        result = self.call_function(value, [], {}, span_of(value.node))
                        if isinstance(result, (Sequential, Functional)):
                            found[n] = result
            self._models = list(found.items())
        return self._models

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
        header = (
            f"# Imported from {self.name} (`{name}`, line {span.line}) by `cnn-arch import`; one line per Keras layer."
        )
        try:
            text, owners = write_spec(
                self.graph, output, header, lambda layer: f"line {layer.origin.line}: {layer.keras}"
            )
        except Untranslatable as problem:
            raise SpecError(problem.message, span, hint=problem.hint, source=self.source) from None
        origins = {line: self.graph.layers[index].origin for line, index in owners.items()}
        return ImportedSpec(name, text, origins, self.source, span)

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
            raise Return(self.value(node.value, env) if node.value is not None else None)
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
                if isinstance(value, MODEL_VALUES):
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
        if isinstance(node, ast.UnaryOp) and type(node.op) in UNARY:
            operand = self.value(node.operand, env)
            return apply(self.error, node, UNARY[type(node.op)], operand)
        if isinstance(node, ast.BinOp):
            left, right = self.value(node.left, env), self.value(node.right, env)
            return (
                apply(self.error, node, BINARY[type(node.op)], left, right)
                if type(node.op) in BINARY
                else self._no(node)
            )
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in COMPARE:
            left, right = self.value(node.left, env), self.value(node.comparators[0], env)
            return apply(self.error, node, COMPARE[type(node.ops[0])], left, right)
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
            return apply(self.error, node, lambda a, i: a[i], self.value(node.value, env), self.value(node.slice, env))
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
            return self.call_function(func, args, kwargs, span_of(node))
        if isinstance(func, KerasName):
            return self.keras_call(func.path, node, args, kwargs, env)
        if isinstance(func, (LayerObject, Sequential)):
            if len(args) != 1 or kwargs:
                raise self.error("a layer is called on one tensor", node)
            return self.apply_layer(func, args[0], node)
        if node.func.__class__ is ast.Name and node.func.id in BUILTINS and node.func.id not in env:
            return apply(self.error, node, BUILTINS[node.func.id], *args, **kwargs)
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
        except Return as returned:
            return returned.value
        finally:
            self.depth -= 1
        return None

    def error(self, message: str, node: ast.AST, hint: str | None = None) -> SpecError:
        return SpecError(message, span_of(node), hint=hint, source=self.source)


def _required(definition: ast.FunctionDef) -> bool:
    args = definition.args
    return len(args.args) > len(args.defaults) or any(d is None for d in args.kw_defaults)
