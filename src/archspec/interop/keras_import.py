"""Read Keras model-building code by static analysis of its syntax tree: no TensorFlow or Keras is
imported and no user code runs. A small evaluator follows what real scripts do: literals and
arithmetic, `for` and `while` loops with computable bounds, comprehensions, `if` and conditional
expressions on values it can compute, user functions (defaults, keyword arguments, `*args`,
`**kwargs`, closures), `keras.Model` and `keras.layers.Layer` subclasses whose `__init__` makes
layers and whose `call` applies them, the Sequential, `model.add` and functional styles, and the
shapes of the tensors it tracks (`x.shape[-1]`, `keras.ops.shape(x)`, `K.int_shape(x)`).

Whatever it cannot follow is reported at its Python line and column once the model needs it, never
guessed; any failure inside the reader, a recursion too deep included, is such a located error.
"""

from __future__ import annotations

import ast
from collections import ChainMap
from pathlib import Path
from typing import Any

from archspec.errors import Note, SourceText, Span, SpecError
from archspec.interop.imported import ImportedSpec, ModelFile
from archspec.interop.keras_graph import LayerGraph, keras_kinds, write_spec
from archspec.interop.keras_models import KerasModels
from archspec.interop.keras_values import (
    BINARY,
    BUILTINS,
    COMPARE,
    METHODS,
    MODEL_VALUES,
    MODULES,
    TYPES,
    UNARY,
    Break,
    Continue,
    Function,
    Functional,
    ImportedName,
    Instance,
    KerasClass,
    KerasName,
    LayerObject,
    PythonModule,
    Return,
    Sequential,
    SourceModule,
    Tensor,
    Unknown,
    apply,
    span_of,
)
from archspec.interop.python_files import Home, find_module, home_of, package_of, roots_for
from archspec.layers import Untranslatable

# Keras itself, which the reader models (never reads): Keras 3, TensorFlow's `tf.keras`, and the
# `keras_applications` package Keras 2.2-2.3 built `keras.applications` from.
KERAS_ROOTS = ("keras", "tensorflow", "tf_keras", "keras_applications")
GLOBALS = " global"  # a function scope's names declared `global` (no Python name has a space)
LINES = 10_000_000  # an imported module's lines are numbered from k * LINES while it is read
MAX_STEPS = 200_000  # statements and expressions evaluated: any real model file is far below
MAX_CALL_DEPTH = 48
MAX_WHILE = 10_000  # rounds of a `while` loop
MODEL_BASES = ("Model", "Functional", "Sequential")
LAYER_BASES = ("Layer",)


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
    return ModelFile([n for n, _ in importer.relocating(importer.models)], importer.read)


class _Importer(KerasModels):
    def __init__(self, text: str, name: str, input_shape: tuple | None) -> None:
        self.source = SourceText(name, text)
        self.name = name
        self.input_shape = input_shape
        self.graph = LayerGraph()
        self.env: dict[str, Any] = {}
        self.steps = 0
        self.depth = 0
        self.applied: dict[int, Any] = {}  # layers applied so far, by id (held, so ids stay unique)
        self._models: list[tuple[str, Any]] | None = None
        self.found: list[tuple[str, Any]] = []
        self.home: Home | None = home_of(Path(name)) if Path(name).parent.is_dir() else None  # an unsaved buffer too
        self.modules: dict[Path, SourceModule] = {}
        self.sources = [self.source]  # the file's, then each module's it reads, by `line // LINES`
        self.guessing = 0  # inside `try` blocks with handlers
        self.unread_error: SpecError | None = None
        self.unopened: dict[str, str] = {}  # names imported from modules static reading does not open
        self.site = Span(1, 1)  # the statement of the file itself being read (a module's layers are placed there)
        try:
            tree = ast.parse(text, filename=name)
        except SyntaxError as error:
            span = Span(error.lineno or 1, error.offset or 1)
            raise SpecError(f"not valid Python: {error.msg}", span, source=self.source) from None
        except (RecursionError, MemoryError, ValueError) as error:  # a file nested past the parser's limits
            raise SpecError(
                f"cannot parse this file ({type(error).__name__})", Span(1, 1), source=self.source
            ) from None
        self.env["__name__"] = "__main__"  # read as the script it is, as `--run` runs it
        self.relocating(lambda: self.block(tree.body, self.env, top=True))

    # --- modules the file imports ----------------------------------------------------------------

    def relocating(self, work):
        """Run `work()`; an error in a module the file imports is shown in that module's file."""
        try:
            return work()
        except SpecError as error:
            raise self.relocated(error) from None

    def relocated(self, error: SpecError) -> SpecError:
        span = error.span
        if span is None or span.line < LINES or error.source is not self.source:
            return error
        index, line = divmod(span.line, LINES)
        notes = (*error.notes, Note(f"reached from line {self.site.line} of {self.name}", None))
        return SpecError(
            error.message,
            Span(line, span.column, span.end_column),
            hint=error.hint,
            notes=notes,
            source=self.sources[index],
        )

    def here(self, node: ast.AST | None) -> Span:
        """Where a model made at `node` is placed: there in the file itself; for code of a module the
        file imports, at the file's statement that led there (the spec's lines point into one file)."""
        return self.placed(span_of(node) if node is not None else self.site)[0]

    def placed(self, span: Span) -> tuple[Span, str]:
        """A place in the file read, and (`nets/blocks.py:12`) the module's line, if elsewhere."""
        if span.line < LINES:
            return span, ""
        index, line = divmod(span.line, LINES)
        path = Path(self.sources[index].name)
        for base in (Path(self.name).parent, self.home.root if self.home else None):
            if base is not None and path.is_relative_to(base):
                path = path.relative_to(base)
                break
        return self.site, f"{path.as_posix()}:{line}"

    def read(self, model: str | None) -> ImportedSpec:
        return self.relocating(lambda: self.run(model))

    def module(self, dotted: str, level: int, node: ast.AST, env) -> SourceModule | None:
        """Module `dotted` (relative by `level` dots to the code's own package), if the reader opens it."""
        current = env.get("__name__") if isinstance(env.get("__name__"), str) else None
        home = self.home_of_code(current)
        if home is None:
            return None
        if level:
            package = package_of(home, self.path_of_code(current))
            if package is None:
                raise self.error("a relative import outside a package", node)
            parts = package.split(".")
            if level - 1 >= len(parts):
                raise self.error("this relative import goes above the top-level package", node)
            base = ".".join(parts[: len(parts) - (level - 1)])
            dotted = f"{base}.{dotted}" if dotted else base
            roots = [home.root] if home.root is not None else []
        else:
            roots = roots_for(self.home, dotted) if self.home is not None else []
        found = find_module(dotted, roots)
        if found is None:
            return None
        path, folder = found
        if path not in self.modules:
            self.modules[path] = SourceModule(dotted, path, folder)
        return self.modules[path]

    def home_of_code(self, current: str | None) -> Home | None:
        if current is None or current == "__main__":
            return self.home
        for module in self.modules.values():
            if module.name == current:
                return home_of(module.path)
        return None

    def path_of_code(self, current: str | None) -> Path:
        for module in self.modules.values():
            if module.name == current:
                return module.path
        return Path(self.name)

    def module_env(self, module: SourceModule, node: ast.AST) -> dict:
        """The names of `module`, reading its file the first time (a circular import sees the names
        read so far, as in Python)."""
        if module.env is not None:
            return module.env
        module.env = {"__name__": module.name}
        try:
            text = module.path.read_text(encoding="utf-8")
            tree = ast.parse(text, filename=str(module.path))
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError, RecursionError, MemoryError) as problem:
            module.failed = self.error(f"cannot read module `{module.name}` ({type(problem).__name__})", node)
            return module.env
        self.sources.append(SourceText(str(module.path), text))
        ast.increment_lineno(tree, (len(self.sources) - 1) * LINES)
        try:
            self.block(tree.body, module.env)
        except SpecError as error:
            module.failed = error
        except (Return, Break, Continue):
            module.failed = self.error(f"module `{module.name}` does not read as Python", node)
        return module.env

    def module_attribute(self, module: SourceModule, name: str, node: ast.AST) -> Any:
        """`module.name`, or `from module import name`: one of its names, else its submodule."""
        env = self.module_env(module, node)
        if name in env:
            found = env[name]
            if isinstance(found, Unknown):
                raise found.error
            return self.resolved(found, node)
        if module.folder is not None:
            inner = find_module(name, [module.folder])
            if inner is not None:
                path, folder = inner
                return self.modules.setdefault(path, SourceModule(f"{module.name}.{name}", path, folder))
        if module.failed is not None:
            raise module.failed
        raise self.error(f"module `{module.name}` has no name `{name}` the importer saw defined", node)

    def resolved(self, value: Any, node: ast.AST) -> Any:
        if isinstance(value, ImportedName):
            return self.module_attribute(value.module, value.name, value.node)
        return value

    # --- choosing the model ----------------------------------------------------------------------

    def models(self) -> list[tuple[str, Any]]:
        if self._models is None:
            found = dict(self.found)
            if not found:  # only a builder function: call the ones that need no arguments
                for name, value in list(self.env.items()):
                    if isinstance(value, Function) and not _required(value.node):
                        result = self.guarded(
                            lambda v=value: self.call_function(v, [], {}, span_of(v.node)), value.node
                        )
                        if isinstance(result, (Sequential, Functional)) or _is_model(result):
                            found[name] = result
            self._models = list(found.items())
        return self._models

    def run(self, model: str | None) -> ImportedSpec:
        models = self.models()
        if not models and self.unread_error is not None:
            raise self.unread_error  # the model comes from a package static reading does not open
        if not models:
            raise SpecError(
                "no Keras model found: expected `keras.Sequential(...)`, `keras.Model(inputs, outputs)` or a "
                "`keras.Model` subclass assigned at the top level, or a function without arguments that returns one",
                Span(1, 1),
                hint="`cnn-arch import --run` runs the script and reads the model it builds",
                source=self.source,
            )
        if model is None:
            return self.translate(*models[-1])
        for name, value in models:
            if name == model:
                return self.translate(name, value)
        raise SpecError(
            f"no model named `{model}`",
            Span(1, 1),
            hint=f"models: {', '.join(n for n, _ in models)}",
            source=self.source,
        )

    def translate(self, name: str, value: Any) -> ImportedSpec:
        def output() -> tuple[int, Span]:
            if isinstance(value, Sequential):
                return self.sequential_graph(value), value.span
            if isinstance(value, Instance):
                return self.subclassed_graph(value), value.span
            return value.output.node, value.span

        node, span = self.guarded(output, None)
        header = (
            f"# Imported from {self.name} (`{name}`, line {span.line}) by `cnn-arch import`; one line per Keras layer."
        )
        try:
            text, owners = write_spec(
                self.graph, node, header, lambda layer: f"line {layer.origin.line}: {layer.keras}" + _made(layer)
            )
        except Untranslatable as problem:
            raise SpecError(problem.message, span, hint=problem.hint, source=self.source) from None
        origins = {line: self.graph.layers[index].origin for line, index in owners.items()}
        return ImportedSpec(name, text, origins, self.source, span)

    def guarded(self, work, node: ast.AST | None):
        """Run `work()`; any failure of the reader is an error at `node` (or the file's start)."""
        try:
            return work()
        except SpecError:
            raise
        except RecursionError:
            raise self.located("this is nested too deeply to follow", node) from None
        except Exception as error:  # a gap of the reader, reported where it was reading, never a traceback
            raise self.located(f"cannot follow this ({type(error).__name__}: {error})", node) from None

    def located(self, message: str, node: ast.AST | None) -> SpecError:
        return SpecError(message, span_of(node) if node is not None else Span(1, 1), source=self.source)

    # --- statements --------------------------------------------------------------------------

    def block(self, statements: list[ast.stmt], env, top: bool = False) -> None:
        for statement in statements:
            self.statement(statement, env, top)

    def statement(self, node: ast.stmt, env, top: bool = False) -> None:
        site = self.site
        if node.lineno < LINES:
            self.site = span_of(node)
        try:
            self._statement(node, env, top)
        except SpecError:
            raise  # the site stays where it failed, for the error's note
        except (Return, Break, Continue):
            self.site = site
            raise
        except RecursionError:
            raise self.located("this statement is nested too deeply to follow", node) from None
        except Exception as error:  # a gap of the reader: located, never a traceback
            raise self.located(f"cannot follow this statement ({type(error).__name__}: {error})", node) from None
        self.site = site

    def _statement(self, node: ast.stmt, env, top: bool) -> None:
        self.step(node)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            self.imports(node, env)
        elif isinstance(node, ast.FunctionDef):
            env[node.name] = Function(node, env)
        elif isinstance(node, ast.ClassDef):
            self.class_def(node, env)
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
        elif isinstance(node, ast.While):
            self.while_loop(node, env, top)
        elif isinstance(node, ast.If):
            test = self.lazy(node.test, env)
            if isinstance(test, Unknown) and _same_imports(node.body, node.orelse):
                self.block(node.body, env, top)  # `if TF: from tensorflow.keras... else: from keras...`
                return
            if isinstance(test, Unknown):
                if self.touches_model(node, env):
                    raise SpecError(
                        f"cannot tell which branch of this `if` builds the model: {test.error.message}",
                        span_of(node.test),
                        hint="`cnn-arch import --run` runs the script instead",
                        source=self.source,
                    )
                return
            self.block(node.body if self.truth(test, node.test) else node.orelse, env, top)
        elif isinstance(node, ast.Return):
            raise Return(self.value(node.value, env) if node.value is not None else None)
        elif isinstance(node, ast.With):
            for item in node.items:  # `with strategy.scope():` builds the model inside
                if item.optional_vars is not None:
                    self.assign(item.optional_vars, self.lazy(item.context_expr, env), env, top)
            self.block(node.body, env, top)
        elif isinstance(node, ast.Try):
            self.guessing += bool(node.handlers)  # a value the body cannot compute stays unknown: it may fail there
            try:
                self.block(node.body, env, top)  # the handlers run only if the body fails, which reading cannot
            finally:
                self.guessing -= bool(node.handlers)
            self.block(node.orelse, env, top)
            self.block(node.finalbody, env, top)
        elif isinstance(node, ast.Raise):
            raise SpecError("the code raises an exception here", span_of(node), source=self.source)
        elif isinstance(node, ast.Break):
            raise Break()
        elif isinstance(node, ast.Continue):
            raise Continue()
        elif isinstance(node, ast.Global) and isinstance(env, ChainMap):
            env.maps[0].setdefault(GLOBALS, set()).update(node.names)
        elif isinstance(node, ast.Delete):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    env.pop(target.id, None)
        # Anything else (pass, assert, global, ...) does not change the architecture.

    def step(self, node: ast.AST) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise self.located(
                f"the code runs past {MAX_STEPS:,} steps, too long to follow (a loop without a small bound?)", node
            )

    def imports(self, node: ast.Import | ast.ImportFrom, env) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                root = alias.name.split(".")[0]
                if root in KERAS_ROOTS:
                    env[alias.asname or root] = KerasName(alias.name if alias.asname else root)
                elif alias.name in MODULES:
                    env[alias.asname or alias.name] = MODULES[alias.name]
                else:  # the script's own module: `import blocks`, `import mypkg.blocks as b`
                    found = self.module(alias.name if alias.asname else root, 0, node, env)
                    if alias.asname and found is not None:
                        found = self.module(alias.name, 0, node, env)
                    if found is not None:
                        env[alias.asname or root] = found
                    else:
                        self.unopened[alias.asname or root] = alias.name
            return
        module = node.module or ""
        if module.split(".")[0] in KERAS_ROOTS and not node.level:
            for alias in node.names:
                env[alias.asname or alias.name] = KerasName(f"{module}.{alias.name}")
        elif module in MODULES and not node.level:
            for alias in node.names:
                function = MODULES[module].functions.get(alias.name)
                if function is not None:
                    env[alias.asname or alias.name] = function
        else:
            found = self.module(module, node.level, node, env)
            for alias in node.names:
                if found is None:  # another package's names: an error where the model uses one
                    self.unopened[alias.asname or alias.name] = module
                    continue
                if alias.name == "*":
                    names = self.module_env(found, node)
                    public = names.get("__all__")
                    public = (
                        public if isinstance(public, (list, tuple)) else [n for n in names if not n.startswith("_")]
                    )
                    env.update({n: names[n] for n in public if n in names})
                else:
                    env[alias.asname or alias.name] = ImportedName(found, alias.name, node)

    def class_def(self, node: ast.ClassDef, env) -> None:
        if node.name in keras_kinds():  # ConvNeXt's `LayerScale`, the exporter's `ChannelShuffle`: that kind
            env[node.name] = KerasName(node.name)
            return
        bases = [self.lazy(b, env) for b in node.bases]
        overrides = {item.name for item in node.body if isinstance(item, ast.FunctionDef)}
        kept = [b for b in bases if isinstance(b, KerasName) and b.last in keras_kinds()]
        if len(bases) == 1 and kept and not overrides & {"__init__", "build", "call"}:
            env[node.name] = kept[0]  # `class FixedDropout(layers.Dropout)` changing a detail: the layer it is
            return
        names = [b.last for b in bases if isinstance(b, KerasName)] + [
            "Model" if b.model else "Layer" for b in bases if isinstance(b, KerasClass)
        ]
        if any(n in MODEL_BASES for n in names) or any(n in LAYER_BASES for n in names):
            env[node.name] = KerasClass(node, env, model=any(n in MODEL_BASES for n in names))
        else:  # other classes (configs, data loaders) are not followed; using one is an error where it is used
            env[node.name] = Unknown(
                self.error(f"`{node.name}` is a plain class: only keras.Model and Layer subclasses are followed", node)
            )

    def assigned(self, node: ast.expr, env) -> Any:
        """An assigned value: one that builds layers or models must be followed (its error is the
        user's to see now); any other may stay unknown until the model needs it."""
        return self.value(node, env) if self.touches_model(node, env) and not self.guessing else self.lazy(node, env)

    def assign(self, target: ast.expr, value: Any, env, top: bool) -> None:
        if isinstance(target, ast.Name):
            if isinstance(env, ChainMap) and target.id in env.maps[0].get(GLOBALS, ()):
                env = env.maps[-1]  # `global name` in a function: the module's name
            env[target.id] = value
            if isinstance(value, Tensor):  # a name for the tensor, should the spec need one
                self.graph.variables.setdefault(value.node, target.id)
            if top and (isinstance(value, (Sequential, Functional)) or _is_model(value)):
                self.found = [(n, v) for n, v in self.found if n != target.id] + [(target.id, value)]
        elif isinstance(target, (ast.Tuple, ast.List)):
            items = list(value) if isinstance(value, (tuple, list)) else None
            starred = [i for i, e in enumerate(target.elts) if isinstance(e, ast.Starred)]
            if items is not None and starred:
                at = starred[0]
                after = len(target.elts) - at - 1
                items = [*items[:at], list(items[at : len(items) - after]), *items[len(items) - after :]]
            for index, element in enumerate(target.elts):
                element = element.value if isinstance(element, ast.Starred) else element
                fits = items is not None and len(items) == len(target.elts)
                self.assign(element, items[index] if fits else self._unknown(value, element), env, top)
        elif isinstance(target, ast.Attribute):
            owner = self.lazy(target.value, env)
            if isinstance(owner, Instance):
                owner.attrs[target.attr] = value
            # attributes of anything else (a config object, `model.trainable = False`) are not followed
        elif isinstance(target, ast.Subscript):
            owner, key = self.lazy(target.value, env), self.lazy(target.slice, env)
            if isinstance(owner, (list, dict)) and not isinstance(key, Unknown):
                apply(self.error, target, owner.__setitem__, key, value)

    def _unknown(self, value: Any, node: ast.AST) -> Unknown:
        return value if isinstance(value, Unknown) else Unknown(self.error("cannot unpack this value", node))

    def expression_statement(self, node: ast.expr, env) -> None:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = self.lazy(node.func.value, env)
            if isinstance(owner, Sequential) and node.func.attr == "add":
                if len(node.args) != 1 or node.keywords:
                    raise self.error("`add` takes one layer", node)
                self.add_to(owner, self.value(node.args[0], env), node.args[0])
                return
            if isinstance(owner, Instance) and node.func.attr == "build" and owner.cls.model:
                shape = self.lazy(node.args[0], env) if node.args else self.lazy_keyword(node, "input_shape", env)
                if isinstance(shape, (tuple, list)) and len(shape) > 1:
                    owner.input_shape = tuple(shape)[1:]
                return
        if isinstance(node, ast.Constant):
            return  # a docstring
        value = self.lazy(node, env)
        if isinstance(value, Unknown) and self.touches_model(node, env) and _builds(node, env):
            raise value.error  # a call that builds part of the model and cannot be followed
        # Anything else (print, data loading, model.compile, model.fit) does not change the architecture.

    def lazy_keyword(self, node: ast.Call, name: str, env) -> Any:
        for keyword in node.keywords:
            if keyword.arg == name:
                return self.lazy(keyword.value, env)
        return None

    def loop(self, node: ast.For, env, top: bool) -> None:
        iterable = self.lazy(node.iter, env)
        if isinstance(iterable, dict):
            iterable = list(iterable)
        if isinstance(iterable, Unknown) or not isinstance(iterable, (tuple, list, range, str)):
            if self.touches_model(node, env):
                if isinstance(iterable, Unknown):
                    raise iterable.error
                raise self.error("cannot unroll this loop: it does not run over a list, tuple or range", node.iter)
            return
        finished = True
        for item in list(iterable):
            self.assign(node.target, item, env, top)
            try:
                self.block(node.body, env, top)
            except Continue:
                continue
            except Break:
                finished = False
                break
        if finished:
            self.block(node.orelse, env, top)

    def while_loop(self, node: ast.While, env, top: bool) -> None:
        for _ in range(MAX_WHILE):
            test = self.lazy(node.test, env)
            if isinstance(test, Unknown) and _same_imports(node.body, node.orelse):
                self.block(node.body, env, top)  # `if TF: from tensorflow.keras... else: from keras...`
                return
            if isinstance(test, Unknown):
                if self.touches_model(node, env):
                    raise SpecError(
                        f"cannot follow a `while` statement whose condition is not known: {test.error.message}",
                        span_of(node),
                        source=self.source,
                    )
                return
            if not self.truth(test, node.test):
                self.block(node.orelse, env, top)
                return
            try:
                self.block(node.body, env, top)
            except Continue:
                continue
            except Break:
                return
        raise self.located(f"this `while` loop runs more than {MAX_WHILE:,} times, too long to follow", node)

    def truth(self, value: Any, node: ast.AST) -> bool:
        if isinstance(value, MODEL_VALUES) and not isinstance(value, KerasName):
            return True  # a tensor, layer, model, function or module is true, as in Python
        return bool(apply(self.error, node, bool, value))

    def touches_model(self, node: ast.AST, env) -> bool:
        """Whether `node` mentions a tensor, layer, model or Keras name (so it may build the model)."""
        for child in ast.walk(node):
            if isinstance(child, ast.Name) and isinstance(env.get(child.id), MODEL_VALUES):
                return True
        return False

    # --- expressions ---------------------------------------------------------------------------

    def lazy(self, node: ast.expr, env) -> Any:
        """The value, or an `Unknown` holding the error (raised only if the model needs the value)."""
        try:
            return self.value(node, env)
        except SpecError as error:
            return Unknown(error)
        except RecursionError:
            return Unknown(self.error("this expression is nested too deeply to follow", node))

    def value(self, node: ast.expr, env) -> Any:
        self.step(node)
        if isinstance(node, ast.BinOp) and isinstance(node.left, ast.BinOp):
            return self.binary_chain(node, env)  # long sums without deep recursion
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise self.error(f"cannot follow this {_describe(node)}", node)
        return method(node, env)

    def _Constant(self, node, env):
        return node.value

    def _Name(self, node: ast.Name, env):
        if node.id in env:
            found = env[node.id]
            if isinstance(found, Unknown):
                raise found.error
            return self.resolved(found, node)
        if node.id in TYPES:
            return TYPES[node.id]
        if node.id in BUILTINS:
            return BUILTINS[node.id]
        if node.id in self.unopened:
            raise self.unread(node)
        raise self.error(f"`{node.id}` is not a value the importer can follow", node)

    def unread(self, node: ast.Name) -> SpecError:
        """The error of a name from a module not read; kept when the file's own top level uses it,
        should the file then build no model (its model is that name's)."""
        module = self.unopened[node.id]
        what = f"`{node.id}` is a module" if module == node.id else f"`{node.id}` comes from `{module}`, a module"
        error = self.error(
            f"{what} static reading does not open (it reads the file's own folder and package)",
            node,
            hint="`cnn-arch import --run` runs the script; or read the file of the package that builds the model",
        )
        if self.depth == 0 and node.lineno < LINES:
            self.unread_error = error
        return error

    def _Tuple(self, node, env):
        return tuple(self.items(node.elts, env))

    def _List(self, node, env):
        return self.items(node.elts, env)

    def _Set(self, node, env):
        return set(self.items(node.elts, env))

    def _Dict(self, node: ast.Dict, env):
        result = {}
        for key, item in zip(node.keys, node.values):
            if key is None:  # {**other}
                result.update(self.value(item, env))
            else:
                result[self.value(key, env)] = self.value(item, env)
        return result

    def items(self, elements: list[ast.expr], env) -> list:
        result = []
        for element in elements:
            if isinstance(element, ast.Starred):
                result.extend(self.value(element.value, env))
            else:
                result.append(self.value(element, env))
        return result

    def _JoinedStr(self, node: ast.JoinedStr, env):
        parts = []
        for part in node.values:
            if isinstance(part, ast.FormattedValue):
                spec = self.value(part.format_spec, env) if part.format_spec is not None else ""
                parts.append(apply(self.error, part, format, self.value(part.value, env), spec))
            else:
                parts.append(self.value(part, env))
        return "".join(parts)

    def _UnaryOp(self, node: ast.UnaryOp, env):
        operand = self.value(node.operand, env)
        if isinstance(operand, Tensor) and isinstance(node.op, ast.USub):
            return self.tensor_arithmetic("Multiply", operand, -1.0, node)
        if isinstance(node.op, ast.Not):
            return not self.truth(operand, node)
        return apply(self.error, node, UNARY[type(node.op)], operand)

    def binary_chain(self, node: ast.BinOp, env):
        chain = []
        while isinstance(node, ast.BinOp):
            chain.append(node)
            node = node.left
        value = self.value(node, env)
        for link in reversed(chain):
            value = self.binary(link, value, self.value(link.right, env))
        return value

    def _BinOp(self, node: ast.BinOp, env):
        return self.binary(node, self.value(node.left, env), self.value(node.right, env))

    def binary(self, node: ast.BinOp, left: Any, right: Any) -> Any:
        if isinstance(left, Tensor) or isinstance(right, Tensor):
            return self.tensor_binary(node, left, right)
        if type(node.op) not in BINARY:
            raise self.error(f"cannot follow the operator `{type(node.op).__name__}`", node)
        return apply(self.error, node, BINARY[type(node.op)], left, right)

    def _BoolOp(self, node: ast.BoolOp, env):
        value = None
        for operand in node.values:
            value = self.value(operand, env)
            truth = self.truth(value, operand)
            if truth if isinstance(node.op, ast.Or) else not truth:
                return value
        return value

    def _Compare(self, node: ast.Compare, env):
        left = self.value(node.left, env)
        for op, comparator in zip(node.ops, node.comparators):
            right = self.value(comparator, env)
            if type(op) in (ast.Is, ast.IsNot):  # identity, of any value (`self.project is None`)
                result = (left is right) == isinstance(op, ast.Is)
            elif isinstance(left, Tensor) or isinstance(right, Tensor):
                raise self.error("cannot compare a tensor", node)
            else:
                result = apply(self.error, node, COMPARE[type(op)], left, right)
            if not result:
                return False
            left = right
        return True

    def _IfExp(self, node: ast.IfExp, env):
        return self.value(node.body if self.truth(self.value(node.test, env), node.test) else node.orelse, env)

    def _Attribute(self, node: ast.Attribute, env):
        owner = self.value(node.value, env)
        if isinstance(owner, KerasName):
            return KerasName(f"{owner.path}.{node.attr}")
        if isinstance(owner, Tensor) and node.attr == "shape":
            return self.shape_of(owner)
        if isinstance(owner, Tensor) and node.attr == "get_shape":  # TensorFlow's spelling of `.shape`
            return lambda: self.shape_of(owner)
        if isinstance(owner, Instance):
            if node.attr in owner.attrs:
                return owner.attrs[node.attr]
            method = _method(owner.cls, node.attr)
            if method is not None:
                return Function(method, owner.cls.scope, owner)
            raise self.error(f"`{owner.cls.node.name}` has no attribute `{node.attr}` the importer saw set", node)
        if isinstance(owner, Function) and node.attr in ("__doc__", "__name__"):
            return getattr(owner.node, "name", "lambda") if node.attr == "__name__" else ast.get_docstring(owner.node)
        if isinstance(owner, SourceModule):
            return self.module_attribute(owner, node.attr, node)
        if (
            isinstance(owner, tuple)
            and hasattr(owner, "_fields")
            and (node.attr in owner._fields or node.attr == "_replace")
        ):
            return getattr(owner, node.attr)  # a namedtuple's field, or `_replace`
        if isinstance(owner, PythonModule):
            if node.attr in owner.functions:
                return owner.functions[node.attr]
            raise self.error(f"`{owner.name}.{node.attr}` is not a function the importer follows", node)
        if type(owner) in METHODS and node.attr in METHODS[type(owner)]:
            return getattr(owner, node.attr)
        if node.attr == "as_list" and isinstance(owner, tuple):
            return lambda: list(owner)
        error = self.error(f"cannot follow the attribute `.{node.attr}`" + (" of None" if owner is None else ""), node)
        if isinstance(owner, (Sequential, Functional, Tensor, LayerObject)):
            return Unknown(error)  # `model.fit`, `x.dtype`: an error only if the model needs it
        raise error

    def _Subscript(self, node: ast.Subscript, env):
        owner = self.value(node.value, env)
        key = self.value(node.slice, env)
        if isinstance(owner, Tensor):
            return self.tensor_index(owner, key, node)
        return apply(self.error, node, lambda a, i: a[i], owner, key)

    def _Slice(self, node: ast.Slice, env):
        parts = [self.value(p, env) if p is not None else None for p in (node.lower, node.upper, node.step)]
        return slice(*parts)

    def _ListComp(self, node, env):
        return self.comprehension(node, env, lambda scope: [self.value(node.elt, scope)])

    def _GeneratorExp(self, node, env):
        return self._ListComp(node, env)

    def _SetComp(self, node, env):
        return set(self._ListComp(node, env))

    def _DictComp(self, node: ast.DictComp, env):
        pairs = self.comprehension(
            node, env, lambda scope: [(self.value(node.key, scope), self.value(node.value, scope))]
        )
        return dict(pairs)

    def comprehension(self, node, env, produce) -> list:
        results: list = []
        scope = ChainMap({}, env)

        def run(level: int) -> None:
            if level == len(node.generators):
                results.extend(produce(scope))
                return
            generator = node.generators[level]
            iterable = self.value(generator.iter, scope)
            if isinstance(iterable, dict):
                iterable = list(iterable)
            if not isinstance(iterable, (list, tuple, range, str, set)):
                raise self.error("cannot iterate over this value", generator.iter)
            for item in list(iterable):
                self.step(generator)
                self.assign(generator.target, item, scope, False)
                if all(self.truth(self.value(test, scope), test) for test in generator.ifs):
                    run(level + 1)

        run(0)
        return results

    def _Lambda(self, node: ast.Lambda, env):
        return Function(node, env)

    def _NamedExpr(self, node: ast.NamedExpr, env):
        value = self.value(node.value, env)
        self.assign(node.target, value, env, False)
        return value

    def _Call(self, node: ast.Call, env):
        if isinstance(node.func, ast.Name) and node.func.id == "super" and node.func.id not in env:
            return Unknown(self.error("`super()` is not followed", node))
        if isinstance(node.func, ast.Name) and node.func.id == "eval" and "eval" not in env:
            return self.evaluated(node, env)
        func = self.value(node.func, env)
        if isinstance(func, Unknown):  # a method of a model or tensor: `history = model.fit(...)`
            return func
        args, kwargs = self.arguments(node, env)
        if isinstance(func, Function):
            return self.call_function(func, args, kwargs, span_of(node))
        if isinstance(func, KerasClass):
            return self.instantiate(func, args, kwargs, node)
        if isinstance(func, Instance):
            return self.call_instance(func, args, kwargs, node)
        if isinstance(func, KerasName):
            return self.keras_call(func.path, node, args, kwargs, env)
        if isinstance(func, (LayerObject, Sequential)):
            if len(args) != 1:
                raise self.error("a layer is called on one tensor (or one list of tensors)", node)
            return self.apply_layer(func, args[0], node)
        if isinstance(func, Functional):
            raise self.error("a functional model used as a layer is read from a saved model, not from source", node)
        if callable(func):  # a builtin, a `math` function, a method of a list or string
            return apply(self.error, node, func, *args, values=False, **kwargs)
        raise self.error("cannot follow this call", node.func)

    def evaluated(self, node: ast.Call, env) -> Any:
        """`eval(text)`: the expression `text` holds, read in the caller's scope (as `eval` does with
        the caller's names), placed at the call."""
        text = self.value(node.args[0], env) if len(node.args) == 1 and not node.keywords else None
        if not isinstance(text, str):
            raise self.error("`eval` is followed for one string holding an expression", node)
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError:
            raise self.error(f"`eval` of {text!r}, which is not a Python expression", node) from None
        for inner in ast.walk(tree):
            ast.copy_location(inner, node)
            inner.end_lineno, inner.end_col_offset = node.end_lineno, node.end_col_offset
        return self.value(tree.body, env)

    def arguments(self, node: ast.Call, env) -> tuple[list, dict]:
        args = self.items(node.args, env)
        kwargs: dict[str, Any] = {}
        for keyword in node.keywords:
            value = self.value(keyword.value, env)
            if keyword.arg is None:
                if not isinstance(value, dict):
                    raise self.error("`**` takes a dict", keyword.value)
                kwargs.update(value)
            else:
                kwargs[keyword.arg] = value
        return args, kwargs

    def call_function(self, function: Function, args: list, kwargs: dict, span: Span) -> Any:
        definition = function.node
        params = definition.args
        if function.self is not None:
            args = [function.self, *args]
        given = self.bind(definition, params, args, kwargs, span, function.scope)
        if self.depth >= MAX_CALL_DEPTH:
            raise SpecError(f"function calls nested more than {MAX_CALL_DEPTH} deep", span, source=self.source)
        local = ChainMap(given, function.scope)  # the arguments, then the names where it was defined
        self.depth += 1
        try:
            if isinstance(definition, ast.Lambda):
                return self.value(definition.body, local)
            self.block(definition.body, local)
        except Return as returned:
            return returned.value
        finally:
            self.depth -= 1
        return None

    def bind(self, definition, params: ast.arguments, args: list, kwargs: dict, span: Span, scope) -> dict:
        """The arguments of a call by parameter name; defaults are evaluated where the function was
        defined (Python evaluates them once there, which is the same for the values read here)."""
        name = getattr(definition, "name", "lambda")
        positional = [a.arg for a in (*params.posonlyargs, *params.args)]
        keyword_only = [a.arg for a in params.kwonlyargs]
        given: dict[str, Any] = dict(zip(positional, args))
        extra = args[len(positional) :]
        if extra and params.vararg is None:
            raise SpecError(f"`{name}` takes {len(positional)} positional arguments", span, source=self.source)
        if params.vararg is not None:
            given[params.vararg.arg] = tuple(extra)
        rest = {}
        for key, value in kwargs.items():
            if key in positional or key in keyword_only:
                given[key] = value
            elif params.kwarg is not None:
                rest[key] = value
            else:
                raise SpecError(f"`{name}` has no parameter `{key}`", span, source=self.source)
        if params.kwarg is not None:
            given[params.kwarg.arg] = rest
        defaults = dict(zip(positional[::-1], params.defaults[::-1]))
        defaults.update({a.arg: d for a, d in zip(params.kwonlyargs, params.kw_defaults) if d is not None})
        for parameter in (*positional, *keyword_only):
            if parameter not in given:
                if parameter not in defaults:
                    raise SpecError(f"`{name}` needs `{parameter}`", span, source=self.source)
                given[parameter] = self.lazy(defaults[parameter], scope)
        return given

    # --- classes ---------------------------------------------------------------------------------

    def instantiate(self, cls: KerasClass, args: list, kwargs: dict, node: ast.Call) -> Instance:
        instance = Instance(cls, {}, self.here(node))
        init = _method(cls, "__init__")
        if init is not None:
            self.call_function(Function(init, cls.scope, instance), args, kwargs, span_of(node))
        return instance

    def call_instance(self, instance: Instance, args: list, kwargs: dict, node: ast.Call) -> Any:
        call = _method(instance.cls, "call")
        if call is None:
            raise self.error(f"`{instance.cls.node.name}` has no `call` method", node)
        if instance.cls.model and args and isinstance(args[0], Tensor):
            self.applied_once(instance, node)
        output = self.call_function(Function(call, instance.cls.scope, instance), args, kwargs, span_of(node))
        if instance.cls.model and args and isinstance(args[0], Tensor) and isinstance(output, Tensor):
            instance.output = output  # `model(keras.Input(...))` builds it: its graph is this call's
        return output

    def subclassed_graph(self, instance: Instance) -> int:
        """The output of a `keras.Model` subclass's `call`: the call the script made on an input, or
        one on an input of its built shape."""
        if instance.output is not None and self.input_shape is None:
            return instance.output.node
        shape = self.input_shape or instance.input_shape
        if shape is None:
            raise SpecError(
                f"the input shape of `{instance.cls.node.name}` is not known",
                instance.span,
                hint="call `model.build((None, H, W, C))` in the code, or pass --input HxWxC",
                source=self.source,
            )
        origin = Tensor(self.read_input({"shape": tuple(shape)}, instance.span, {}))
        self.applied.clear()  # a fresh call of the whole model: the script's own call, if any, is left unused
        output = self.call_instance(instance, [origin], {}, None)
        if not isinstance(output, Tensor):
            raise SpecError(
                f"`{instance.cls.node.name}.call` does not return one tensor", instance.span, source=self.source
            )
        return output.node

    def error(self, message: str, node: ast.AST | None, hint: str | None = None) -> SpecError:
        span = span_of(node) if node is not None else Span(1, 1)
        return SpecError(message, span, hint=hint, source=self.source)


def _method(cls: KerasClass, name: str) -> ast.FunctionDef | None:
    for item in cls.node.body:
        if isinstance(item, ast.FunctionDef) and item.name == name:
            return item
    return None


def _is_model(value: Any) -> bool:
    return isinstance(value, Instance) and value.cls.model


def _builds(node: ast.expr, env) -> bool:
    """Whether an expression statement calls something that may add to a model (a user function, a
    layer method), as opposed to `print(model.summary())` or `model.compile(...)`."""
    return (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and isinstance(env.get(node.func.id), Function)
    )


def _made(layer) -> str:
    return f" ({layer.made})" if layer.made else ""


def _same_imports(body: list[ast.stmt], orelse: list[ast.stmt]) -> bool:
    """Whether two branches only import, and bind the same names to the same Keras objects
    (`tensorflow.keras.layers.Conv2D` is Keras' `Conv2D`, as the reader reads `tf.keras`)."""

    def bound(statements: list[ast.stmt]) -> dict[str, str] | None:
        names: dict[str, str] = {}
        for statement in statements:
            if not isinstance(statement, ast.ImportFrom) or statement.level or not statement.module:
                return None
            if statement.module.split(".")[0] not in KERAS_ROOTS:
                return None
            module = statement.module.removeprefix("tensorflow.")
            module = "keras" + module.removeprefix("tf_keras") if module.startswith("tf_keras") else module
            for alias in statement.names:
                names[alias.asname or alias.name] = f"{module}.{alias.name}"
        return names

    first, second = bound(body), bound(orelse)
    return bool(first) and first == second


def _required(definition: ast.FunctionDef) -> bool:
    args = definition.args
    positional = len(args.posonlyargs) + len(args.args)
    return positional > len(args.defaults) or any(d is None for d in args.kw_defaults)


def _describe(node: ast.AST) -> str:
    names = {
        "Await": "`await` expression",
        "Yield": "`yield` expression",
        "YieldFrom": "`yield from` expression",
        "Starred": "starred expression",
    }
    return names.get(type(node).__name__, f"{type(node).__name__} expression")
