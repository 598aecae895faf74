"""A typed graph as the statements of written code, for the Keras, PyTorch and Flax writers.

The graph gives every layer, value and shape; the syntax tree gives the shape of the code: which
`def` a call expands and with which arguments, the merge blocks, `if`s, loops and named tensors. A
macro becomes one function for all its calls: its body is walked once over every call in lockstep
(each call an `Instance`), the graph's node for each call at each line. A value every call agrees
on is written as it is; one that differs is written as the expression the spec wrote for it (a
`Traced`), checked against each call's value. Where calls differ in what they make (an `if` that
goes both ways) the code gets an `if`; where no expression can say the difference, the writer
splits the calls into several functions (`FunctionCode.split`) or refuses at the line.
"""

from __future__ import annotations

import keyword
from dataclasses import dataclass, field, replace
from typing import Any

from archspec.errors import Span
from archspec.expr import condition, evaluate
from archspec.infer import TypedGraph
from archspec.interop.code_values import Instance, Sym, Traced, const, from_syntax, substitute, traced_attr, unify
from archspec.ir import Node, Scope
from archspec.layers import REGISTRY, TRAILING_WORDS, LayerKind
from archspec.layers.base import Varies, pair
from archspec.layers.shape import sides
from archspec.syntax import Block, Call, Def, IfElse, Line, Module, Ref, Take, TensorRef
from archspec.syntax import If as IfStatement
from archspec.words import BRANCH, IDENTITY, INPUT, MERGES, REPEAT, STREAM_NAMES, LayerCall, Word

Shape = tuple

# Names written code never gives a tensor: the frameworks' modules and the writers' own words.
RESERVED = frozenset(
    {*keyword.kwlist, "self", "nn", "F", "torch", "layers", "keras", "jax", "jnp", "nnx", "math", "rngs"}
    | {"inputs", "outputs", "model", "build_model", "Model", "super", "range", "sum", "max", "min", "int"}
)
AXES = {"height": 0, "width": 1, "channels": -1}
CONVERSIONS = {pair: "pair", sides: "sides"}  # argument types whose conversion written code may need


# --- statements ------------------------------------------------------------------------------------


@dataclass
class Layer:
    """`out = layer(inputs)`: one node per instance."""

    kind: LayerKind
    attrs: dict[str, Any]
    inputs: list[str]
    in_shapes: list[Shape]
    out_shape: Shape
    out: str
    nodes: tuple[Node, ...]


@dataclass
class CallStmt:
    """`out = macro(stream, arguments, tensors)`: one macro call per instance."""

    macro: str
    scopes: tuple[Scope, ...]
    args: list[tuple[str, Any, bool]]  # (parameter, value, given by keyword), as the call line wrote them
    stream: str
    tensors: list[tuple[str, str]]  # (parameter, the variable passed)
    keywords: frozenset[str]  # the parameters the spec's call gives by keyword
    in_shapes: list[Shape]  # the stream's, then each tensor's
    out_shape: Shape
    out: str
    key: tuple  # the leaf key of its output sizes: ("out", key, axis)


@dataclass
class Assign:
    out: str
    source: str


@dataclass
class IfStmt:
    clauses: list[tuple[Traced | None, list]]  # (condition, or None for `else`; statements)
    out: str


@dataclass
class Loop:
    """`repeat N:` or `xN` over variable `var`: the body once for every round (`body`, None when the
    rounds differ in what they make) and each round on its own (`rounds`, None when calls repeat a
    different number of times)."""

    count: Any
    var: str
    body: list | None
    rounds: list[list] | None
    problem: str = ""


@dataclass
class FunctionCode:
    """A macro's function for some of its calls: parameters, tensor parameters, body, result."""

    name: str
    definition: Def
    scopes: tuple[Scope, ...]
    params: list[tuple[str, Sym | None, bool]]  # (name, default, the default uses earlier parameters)
    tensors: list[str]  # the tensor parameters' spec names
    stream: str
    body: list
    result: str
    instances: tuple[Instance, ...]
    tensor_vars: list[str]  # their variables
    in_shapes: list[Shape]  # the stream's, then each tensor parameter's (over the instances)
    out_shape: Shape


# --- walking ---------------------------------------------------------------------------------------


class _Cursor:
    """One instance's place in the graph while its code is walked."""

    def __init__(
        self, instance: Instance, events: list, stream: int, names: dict[str, int], pos: int = 0, scope=None
    ) -> None:
        self.scope = scope  # the macro call it walks (None: the top level)
        self.instance = instance
        self.events = events
        self.pos = pos
        self.stream = stream
        self.names = names


class _Namer:
    """Python variable names of one function: spec tensor names kept where Python allows them, the
    stream's and branches' names chosen around them."""

    def __init__(self, params: set[str], spec_names: set[str]) -> None:
        self.taken = set(params) | {n for n in spec_names if n not in RESERVED}
        self.params = set(params)
        self.spec: dict[str, str] = {}

    def fresh(self, base: str) -> str:
        index = 1
        while f"{base}_{index}" in self.taken:
            index += 1
        self.taken.add(f"{base}_{index}")
        return f"{base}_{index}"

    def of(self, name: str) -> str:
        """The variable of spec tensor `name` (a tensor parameter's too)."""
        if name not in self.spec:
            self.spec[name] = name if name not in RESERVED else self.fresh(name)
        return self.spec[name]

    def working(self) -> str:
        """The stream's own variable, `x` unless the spec uses that name."""
        for candidate in ("x", "h", "y", "z"):
            if candidate not in self.taken:
                self.taken.add(candidate)
                return candidate
        return self.fresh("x")


@dataclass
class _Walk:
    cursors: list[_Cursor]
    stream: str  # the variable holding the stream
    out: str  # where a statement's result goes unless it is named
    names: dict[str, str]  # spec tensor name -> variable
    shapes: dict[str, Shape]  # variable -> shape over the instances
    namer: _Namer
    params: frozenset[str]  # the function's parameters that expressions may read
    counter: list = field(default_factory=lambda: [0])

    @property
    def instances(self) -> tuple[Instance, ...]:
        return tuple(c.instance for c in self.cursors)

    def sub(self, cursors: list[_Cursor], stream: str, out: str) -> _Walk:
        """A walk of part of the code (a branch, a clause) over `cursors` (the same or fewer)."""
        shapes = dict(self.shapes)
        if len(cursors) != len(self.cursors):
            instances = tuple(c.instance for c in cursors)
            shapes = {var: rebase(shape, instances) for var, shape in shapes.items()}
        return _Walk(cursors, stream, out, self.names, shapes, self.namer, self.params, self.counter)


def rebase(value: Any, instances: tuple[Instance, ...]) -> Any:
    """`value` over other instances (some of its own): a Traced's expression stays."""
    if isinstance(value, Traced):
        return Traced(value.sym, instances)
    if isinstance(value, tuple):
        return tuple(rebase(v, instances) for v in value)
    return value


class Program:
    """The statements of a typed graph's code, walked on demand by a writer."""

    def __init__(self, typed: TypedGraph, module: Module, logits: bool = False) -> None:
        self.typed = typed
        self.logits = logits  # leave out a final softmax or sigmoid: the model's output is its input
        self.graph = typed.graph
        self.defs = {d.name: d for d in module.defs}
        self.module = module
        self.events: dict[int | None, list] = {}
        for node in self.graph.nodes:
            self.events.setdefault(self._owner(node.scope), []).append(((node.id, 1), node))
        for scope in self.graph.scopes:
            if scope.call is not None:
                self.events.setdefault(self._owner(scope.parent), []).append(((scope.call.start, 0), scope))
        self.events = {k: [e for _, e in sorted(v, key=lambda item: item[0])] for k, v in self.events.items()}
        self._callees: dict[str, FunctionCode | None] = {}
        self.calls: dict[str, list[Scope]] = {}
        for scope in self.graph.scopes:
            if scope.call is not None:
                self.calls.setdefault(scope.call.macro, []).append(scope)

    def _owner(self, scope: int | None) -> int | None:
        while scope is not None and self.graph.scopes[scope].call is None:
            scope = self.graph.scopes[scope].parent
        return scope

    def shape(self, node: int) -> Shape:
        return self.typed.infos[node].shape

    # --- entry points ------------------------------------------------------------------------------

    def top(self, source: str = "x", keep: bool = False) -> tuple[list, str, str]:
        """The network's own statements (after `input`), the variable its input is bound to (`source`
        unless the spec uses that name; `keep`: never written over, as a Keras model's input), and
        the variable of its output."""
        body = list(self.module.body)
        given = None
        if body and isinstance(body[0], Line) and body[0].name == INPUT:
            if body[0].output is not None:
                given = body[0].output.name
            body = body[1:]
        cursor = _Cursor(Instance({}), self.events.get(None, []), 0, {} if given is None else {given: 0}, pos=1)
        namer = _Namer(set(), _spec_names(body) | ({given} if given else set()))
        if source in namer.taken:
            source = namer.fresh(source)
        namer.taken.add(source)
        stream = namer.working() if keep else source
        walk = _Walk([cursor], source, stream, {}, {source: self.shape(0)}, namer, frozenset())
        statements = []
        if given is not None:
            statements = self._name(given, namer.of(given), walk)
        statements += self.statements(body, walk)
        last = statements[-1] if statements else None
        if self.logits and isinstance(last, Layer) and last.kind.probability_output:
            return statements[:-1], source, last.inputs[0]
        return statements, source, walk.stream

    def function(self, name: str, scopes: list[Scope]) -> FunctionCode:
        """`def name`'s function for the calls `scopes` (raises `Varies` where they cannot share one)."""
        definition = self.defs[scopes[0].call.macro]
        instances = []
        cursors = []
        for scope in scopes:
            call = scope.call
            instance = Instance(dict(call.arguments))
            tensors = dict(call.tensors)
            cursors.append(_Cursor(instance, self.events.get(scope.id, []), call.input, dict(tensors), scope=scope))
            instances.append(instance)
        layer_params = {p for p, _ in scopes[0].call.arguments if any(_holds_layer(s.call, p, self) for s in scopes)}
        tensor_params = [p.name for p in definition.params if p.name in dict(scopes[0].call.tensors)]
        for scope in scopes[1:]:
            if [p for p in tensor_params] != [p.name for p in definition.params if p.name in dict(scope.call.tensors)]:
                raise Varies("tensor parameters differ between the calls")
        for param in layer_params:
            values = {dict(s.call.arguments)[param] for s in scopes}
            if len(values) > 1:
                raise Varies(f"the calls pass different layers as `{param}`")
        numbers = [p.name for p in definition.params if p.name not in layer_params and p.name not in tensor_params]
        namer = _Namer({*numbers}, {*tensor_params, *_spec_names(definition.body)})
        stream = namer.working()
        walk = _Walk(cursors, stream, stream, {}, {}, namer, frozenset(numbers))
        in_shapes = []
        for var, key in [(stream, None), *((namer.of(t), t) for t in tensor_params)]:
            nodes = [c.stream if key is None else c.names[key] for c in cursors]
            shape = self._input_shape(var, nodes, walk)
            walk.shapes[var] = shape
            in_shapes.append(shape)
            if key is not None:
                walk.names[key] = var
        body = self.statements(list(definition.body), walk)
        out_shape = self._unify_shape([c.stream for c in cursors], walk.instances, [walk.shapes.get(walk.stream)])
        params = []
        for param in definition.params:
            if param.name not in numbers:
                continue
            default = None if param.default is None else from_syntax(param.default, lambda n: _param_sym(n, numbers))
            late = default is not None and bool(default.leaves())
            params.append((param.name, default, late))
        return FunctionCode(
            name, definition, tuple(scopes), params, tensor_params, stream, body, walk.stream,
            tuple(instances), [namer.of(t) for t in tensor_params], in_shapes, out_shape,
        )  # fmt: skip

    def _input_shape(self, var: str, nodes: list[int], walk: _Walk, leaf: str = "input") -> Shape:
        """A function's (or loop round's) input shape: plain where the instances agree, else a leaf."""
        shapes = [self.shape(n) for n in nodes]
        if len({len(s) for s in shapes}) != 1:
            raise Varies("the calls take inputs of different ranks")
        dims = []
        for axis in range(len(shapes[0])):
            values = [s[axis] for s in shapes]
            if len(set(values)) == 1:
                dims.append(values[0])
                continue
            same = [
                p for p in sorted(walk.params) if all(c.instance.env.get(p) == v for c, v in zip(walk.cursors, values))
            ]
            if axis == len(shapes[0]) - 1 and leaf == "input" and same:
                # a macro's parameter that is its input's width in every call (`cin`): say it so
                dims.append(Traced(Sym("param", (self._first_param(walk, same),)), walk.instances))
                continue
            key = (leaf, var, _axis_name(axis, len(shapes[0])))
            for cursor, value in zip(walk.cursors, values):
                cursor.instance.leaves[key] = value
            dims.append(Traced(Sym("leaf", (key,)), walk.instances))
        return tuple(dims)

    def _first_param(self, walk: _Walk, names: list[str]) -> str:
        """Of `names`, the one the macro lists first."""
        definition = self.defs[walk.cursors[0].scope.call.macro]
        return next(p.name for p in definition.params if p.name in names)

    # --- statements ----------------------------------------------------------------------------------

    def statements(self, body: list, walk: _Walk) -> list:
        out = []
        for statement in body:
            out += self.statement(statement, walk)
        return out

    def statement(self, statement, walk: _Walk) -> list:
        output = getattr(statement, "output", None)
        if output is None:
            return self._unnamed(statement, walk, walk.out)
        var = walk.namer.of(output.name)
        statements = self._unnamed(replace(statement, output=None), walk, var)
        return statements + self._name(output.name, var, walk)

    def _name(self, name: str, var: str, walk: _Walk) -> list:
        """`-> name` after a statement that left the stream in `walk.stream`."""
        statements = []
        if walk.stream != var:  # nothing written (`identity -> x`, `@a -> b`): name the tensor itself
            statements.append(Assign(var, walk.stream))
            walk.shapes[var] = walk.shapes[walk.stream]
            walk.stream = var
        walk.names[name] = var
        for cursor in walk.cursors:
            cursor.names[name] = cursor.stream
        return statements

    def _unnamed(self, statement, walk: _Walk, out: str) -> list:
        if isinstance(statement, Take):
            name = statement.ref.name
            walk.stream = walk.names[name]
            for cursor in walk.cursors:
                cursor.stream = cursor.names[name]
            return []
        if isinstance(statement, IfStatement):
            return self._if(statement, walk, out)
        if isinstance(statement, Block):
            if statement.name in MERGES:
                return self._merge(statement, walk, out)
            if statement.name == REPEAT:
                counts = [evaluate(statement.args[0], self._names(c, walk)) for c in walk.cursors]
                count = self._value(statement.args[0], [int(c) for c in counts], walk)
                return self._loop(list(statement.body), count, [int(c) for c in counts], walk, out)
            raise Varies(f"`{statement.name}:` outside a merge")  # `branch:` only appears inside merges
        line: Line = statement
        if line.repeat is not None and line.repeat != 1:
            return self._loop([replace(line, repeat=None)], line.repeat, [line.repeat] * len(walk.cursors), walk, out)
        return self._line(line, walk, out)

    def _line(self, line: Line, walk: _Walk, out: str) -> list:
        name = line.name
        if name == IDENTITY:
            return []
        if self._is_parameter_line(name, walk):
            return self._parameter_line(line, walk, out)
        if name in self.defs:
            return self._call(line, walk, out)
        return self._layer(line, REGISTRY[name], walk, out)

    def _is_parameter_line(self, name: str, walk: _Walk) -> bool:
        return name not in REGISTRY and name not in self.defs and all(name in c.instance.env for c in walk.cursors)

    def _parameter_line(self, line: Line, walk: _Walk, out: str) -> list:
        """A line named by a parameter holding a layer or macro (the same in every call: else the
        writer gave the calls functions of their own)."""
        values = {c.instance.env[line.name] for c in walk.cursors}
        if len(values) != 1:
            raise Varies(f"`{line.name}` holds different layers in different calls")
        value = values.pop()
        target = value.text
        if target == IDENTITY:
            return []
        if target in self.defs:
            return self._call(replace(line, name=target), walk, out)
        if isinstance(value, LayerCall):
            return self._layer(replace(line, name=target, args=(), kwargs=()), REGISTRY[target], walk, out, fixed=True)
        return self._layer(replace(line, name=target), REGISTRY[target], walk, out)

    # --- layers ----------------------------------------------------------------------------------------

    def _layer(self, line: Line, kind: LayerKind, walk: _Walk, out: str, fixed: bool = False) -> list:
        nodes = [self._take_node(c, line.span) for c in walk.cursors]
        trailing = [] if fixed else [a for a in line.args if self._trailing_word(a, kind, walk) is not None]
        positional = [a for a in line.args if all(a is not t for t in trailing)]
        given: dict[str, Any] = {}
        args = [a for a in kind.args if a.positional]
        if not fixed:
            for arg, expr in zip(args, positional):
                given[arg.name] = expr
            for kwarg in line.kwargs:
                given[kwarg.name] = kwarg.value
        statements = [self._emit(kind, nodes, given, walk, out, walk.stream)]
        for word in trailing:
            nodes = [self._take_node(c, word.span) for c in walk.cursors]
            kinds = {n.kind for n in nodes}
            if len(kinds) != 1:
                raise Varies("the trailing layers differ between the calls")
            trailing_kind = REGISTRY[kinds.pop()]
            given = {}
            if isinstance(word, Call) and word.func in REGISTRY:
                named = [a for a in trailing_kind.args if a.positional]
                given = dict(zip((a.name for a in named), word.args))
                given.update((k.name, k.value) for k in word.kwargs)
            statements.append(self._emit(trailing_kind, nodes, given, walk, out, out))
        return statements

    def _emit(self, kind: LayerKind, nodes: list[Node], given: dict, walk: _Walk, out: str, source: str) -> Layer:
        if {n.kind for n in nodes} != {kind.name}:
            raise Varies("the layers differ between the calls")
        attrs = {}
        for arg in kind.args:
            expr = given.get(arg.name)
            raw = None if expr is None else self._sym(expr, walk)
            conversion = CONVERSIONS.get(arg.convert)
            attrs[arg.name] = traced_attr([n.attrs[arg.name] for n in nodes], raw, walk.instances, conversion)
        in_shapes = [walk.shapes[source]]
        out_shape = self._out_shape(kind, attrs, in_shapes, [n.id for n in nodes], walk)
        for cursor, node in zip(walk.cursors, nodes):
            cursor.stream = node.id
        walk.shapes[out] = out_shape
        walk.stream = out
        return Layer(kind, attrs, [source], in_shapes, out_shape, out, tuple(nodes))

    def _out_shape(self, kind: LayerKind, attrs: dict, in_shapes: list, nodes: list[int], walk: _Walk) -> Shape:
        """The layer's shape rule run on the instances' values: expressions for the sizes that differ
        (a module's channels), checked against the graph."""
        try:
            traced = tuple(kind.output_shape(attrs, in_shapes))
        except Exception:  # (deciding on them, unpacking a padding that is a word in some): the graph's
            traced = ()  # sizes, and for the channels the width argument's or the input's, when they hold
        rank = len(self.shape(nodes[0]))
        widths = [attrs[kind.width_arg]] if kind.width_arg else []
        fallbacks = [(*[None] * (rank - 1), width) for width in [*widths, in_shapes[0][-1]]]
        return self._unify_shape(nodes, walk.instances, [traced, *fallbacks])

    def _unify_shape(self, nodes: list[int], instances, candidates: list) -> Shape:
        shapes = [self.shape(n) for n in nodes]
        if len({len(s) for s in shapes}) != 1:
            raise Varies("the calls make tensors of different ranks")
        dims = []
        for axis in range(len(shapes[0])):
            found = [c[axis] for c in candidates if c and len(c) == len(shapes[0])]
            dims.append(unify([s[axis] for s in shapes], instances, found))
        return tuple(dims)

    def _trailing_word(self, expr, kind: LayerKind, walk: _Walk):
        """The trailing layer (`bn`, `relu`, `bn(scale=false)`, a parameter holding one) `expr` is in
        every call, or None when it is an argument."""
        if not kind.takes_suffix:
            return None
        found = set()
        for cursor in walk.cursors:
            value = self._layer_value(expr, cursor, walk)
            found.add(isinstance(value, Word) and value.text in TRAILING_WORDS)
        if len(found) != 1:
            raise Varies("an argument is a trailing layer in some calls only")
        return expr if found.pop() else None

    def _layer_value(self, expr, cursor: _Cursor, walk: _Walk):
        if isinstance(expr, Call) and expr.func in REGISTRY:
            return Word(expr.func)
        if isinstance(expr, IfElse):
            chosen = expr.then if condition(expr.condition, self._names(cursor, walk)) else expr.otherwise
            return self._layer_value(chosen, cursor, walk)
        if isinstance(expr, Ref):
            value = cursor.instance.env.get(expr.name, Word(expr.name))
            return value
        return None

    # --- calls ------------------------------------------------------------------------------------------

    def _call(self, line: Line, walk: _Walk, out: str) -> list:
        scopes = [self._take_call(c, line.span) for c in walk.cursors]
        definition = self.defs[line.name]
        args: list[tuple[str, Any, bool]] = []
        tensors: list[tuple[str, str]] = []
        params = [p.name for p in definition.params]
        given = [(params[i], expr, False) for i, expr in enumerate(line.args)]
        given += [(k.name, k.value, True) for k in line.kwargs]
        for param, expr, by_keyword in given:
            if isinstance(expr, TensorRef):
                tensors.append((param, walk.names[expr.name]))
                continue
            if any(_holds_layer(s.call, param, self) for s in scopes):
                continue  # baked into the callee's function
            values = [python_arg(dict(s.call.arguments)[param]) for s in scopes]
            args.append((param, self._value(expr, values, walk), by_keyword))
        order = {p: i for i, p in enumerate(params)}
        tensors.sort(key=lambda item: order[item[0]])
        in_shapes = [walk.shapes[walk.stream], *(walk.shapes[var] for _, var in tensors)]
        walk.counter[0] += 1
        key = ("call", walk.counter[0])
        outputs = [s.call.output for s in scopes]
        shapes = [self.shape(n) for n in outputs]
        out_shape = self._unify_shape(outputs, walk.instances, [self._returned(line.name, args, tensors, walk)])
        dims = []
        for axis, dim in enumerate(out_shape):
            if isinstance(dim, Traced) and _opaque(dim):
                leaf = ("out", key, _axis_name(axis, len(out_shape)))
                for cursor, shape in zip(walk.cursors, shapes):
                    cursor.instance.leaves[leaf] = shape[axis]
                dim = Traced(Sym("leaf", (leaf,)), walk.instances)
            dims.append(dim)
        keywords = frozenset(k.name for k in line.kwargs)
        statement = CallStmt(
            line.name, tuple(scopes), args, walk.stream, tensors, keywords, in_shapes, tuple(dims), out, key
        )
        for cursor, scope in zip(walk.cursors, scopes):
            cursor.stream = scope.call.output
        walk.shapes[out] = tuple(dims)
        walk.stream = out
        return [statement]

    def _returned(self, macro: str, args: list, tensors: list, walk: _Walk) -> tuple:
        """The channels a call returns, as the caller can write them: the callee's own expression for
        them (over its parameters and input sizes) with the call's arguments put in."""
        callee = self.callee(macro)
        if callee is None or not callee.out_shape or not isinstance(callee.out_shape[-1], Traced):
            return ()
        given = {param: value for param, value, _ in args}
        defaults = {name: default for name, default, _ in callee.params if default is not None}
        passed = {
            callee.stream: walk.stream,
            **{v: dict(tensors)[t] for t, v in zip(callee.tensors, callee.tensor_vars)},
        }

        def put(sym: Sym) -> Sym:
            if sym.op == "param":
                name = sym.args[0]
                if name in given:
                    value = given[name]
                    return value.sym if isinstance(value, Traced) else const(value)
                if name in defaults:
                    return substitute(defaults[name], put)
            elif sym.args[0][0] == "input" and sym.args[0][2] == "channels" and sym.args[0][1] in passed:
                channels = walk.shapes[passed[sym.args[0][1]]][-1]
                return channels.sym if isinstance(channels, Traced) else const(channels)
            raise Varies("not the caller's to write")

        try:
            channels = substitute(callee.out_shape[-1].sym, put)
        except (Varies, KeyError, IndexError):
            return ()
        return (*[None] * (len(callee.out_shape) - 1), Traced(channels, walk.instances))

    def callee(self, macro: str) -> FunctionCode | None:
        """`macro`'s function for all its calls, when they can share one (for what its calls return)."""
        if macro not in self._callees:
            try:
                self._callees[macro] = self.function(macro, self.calls[macro])
            except Varies:
                self._callees[macro] = None
        return self._callees[macro]

    # --- blocks -----------------------------------------------------------------------------------------

    def _merge(self, block: Block, walk: _Walk, out: str) -> list:
        start, starts = walk.stream, [c.stream for c in walk.cursors]
        statements: list = []
        branches: list[str] = []
        for child in block.body:
            for cursor, node in zip(walk.cursors, starts):
                cursor.stream = node
            walk.stream = start
            target = walk.namer.fresh("branch")
            branch = walk.sub(walk.cursors, start, target)
            if isinstance(child, Block) and child.name == BRANCH:
                inner = self.statements(list(child.body), branch)
                if child.output is not None:
                    inner += self._name(child.output.name, walk.namer.of(child.output.name), branch)
            else:
                inner = self.statement(child, branch)
            if not inner or branch.stream == start:
                walk.namer.taken.discard(target)
            statements += inner
            walk.shapes.update(branch.shapes)
            branches.append(branch.stream)
        nodes = [self._take_node(c, block.span) for c in walk.cursors]
        kind = REGISTRY[block.name]
        attrs = {"branches": unify([n.attrs["branches"] for n in nodes], walk.instances)}
        in_shapes = [walk.shapes[b] for b in branches]
        out_shape = self._out_shape(kind, attrs, in_shapes, [n.id for n in nodes], walk)
        for cursor, node in zip(walk.cursors, nodes):
            cursor.stream = node.id
        walk.shapes[out] = out_shape
        walk.stream = out
        return [*statements, Layer(kind, attrs, branches, in_shapes, out_shape, out, tuple(nodes))]

    def _if(self, statement: IfStatement, walk: _Walk, out: str) -> list:
        chosen: list[int | None] = []
        for cursor in walk.cursors:
            names = self._names(cursor, walk)
            pick = None
            for index, clause in enumerate(statement.clauses):
                if clause.condition is None or condition(clause.condition, names):
                    pick = index
                    break
            chosen.append(pick)
        order = sorted(set(chosen), key=lambda c: len(statement.clauses) if c is None else c)
        start = walk.stream
        if len(order) == 1:
            if order[0] is None:
                return []
            return self.statements(list(statement.clauses[order[0]].body), walk)
        clauses: list[tuple[Traced | None, list]] = []
        groups = []
        for position, pick in enumerate(order):
            cursors = [c for c, p in zip(walk.cursors, chosen) if p == pick]
            branch = walk.sub(cursors, start, out)
            body = [] if pick is None else self.statements(list(statement.clauses[pick].body), branch)
            if branch.stream != out:
                body.append(Assign(out, branch.stream))
                branch.shapes[out] = branch.shapes[branch.stream]
            test = None
            if position < len(order) - 1:
                test = Traced(self._sym(statement.clauses[pick].condition, walk), walk.instances)
            clauses.append((test, body))
            groups.append(branch)
        walk.shapes[out] = self._unify_shape(
            [c.stream for c in walk.cursors], walk.instances, [g.shapes[out] for g in groups]
        )
        for group in groups:  # tensors named inside a clause
            for var, shape in group.shapes.items():
                walk.shapes.setdefault(var, shape)
        walk.stream = out
        return [IfStmt(clauses, out)]

    def _loop(self, body: list, count: Any, counts: list[int], walk: _Walk, out: str) -> list:
        if all(c == 0 for c in counts):
            return []
        start_var = walk.stream
        loop_var = out
        statements: list = []
        # each round on its own, while every instance repeats the same number of times
        rounds = None
        starts: list[list[tuple[int, int, dict]]] = [[] for _ in walk.cursors]
        if len(set(counts)) == 1:
            rounds = []
            for _ in range(counts[0]):
                for cursor, record in zip(walk.cursors, starts):
                    record.append((cursor.pos, cursor.stream, dict(cursor.names)))
                round_walk = walk.sub(walk.cursors, walk.stream, loop_var)
                rounds.append(self.statements(body, round_walk))
                walk.shapes.update(round_walk.shapes)
                walk.stream = round_walk.stream
                if walk.stream != loop_var:
                    rounds[-1].append(Assign(loop_var, walk.stream))
                    walk.shapes[loop_var] = walk.shapes[walk.stream]
                    walk.stream = loop_var
        else:
            for cursor, record, n in zip(walk.cursors, starts, counts):
                for _ in range(n):
                    record.append((cursor.pos, cursor.stream, dict(cursor.names)))
                    single = walk.sub([cursor], start_var, loop_var)
                    self.statements(body, single)
        ends = [(c.pos, c.stream, dict(c.names)) for c in walk.cursors]
        # every round at once: the body written once, as a loop
        loop_body, problem = None, ""
        try:
            round_cursors = []
            for cursor, record in zip(walk.cursors, starts):
                for pos, stream, names in record:
                    instance = Instance(cursor.instance.env, cursor.instance.leaves)
                    round_cursors.append(_Cursor(instance, cursor.events, stream, dict(names), pos))
            round_walk = walk.sub(round_cursors, loop_var, loop_var)
            round_walk.shapes = dict(walk.shapes)
            round_walk.shapes[loop_var] = self._input_shape(
                loop_var, [c.stream for c in round_cursors], round_walk, leaf="round"
            )
            loop_body = self.statements(body, round_walk)
            if round_walk.stream != loop_var:
                loop_body.append(Assign(loop_var, round_walk.stream))
        except Varies as error:
            problem = str(error)
        for cursor, (pos, stream, names) in zip(walk.cursors, ends):
            cursor.pos, cursor.stream, cursor.names = pos, stream, names
        if start_var != loop_var:
            statements.append(Assign(loop_var, start_var))
        walk.shapes[loop_var] = self._unify_shape([c.stream for c in walk.cursors], walk.instances, [])
        walk.stream = loop_var
        return [*statements, Loop(count, loop_var, loop_body, rounds, problem)]

    # --- values --------------------------------------------------------------------------------------

    def _names(self, cursor: _Cursor, walk: _Walk) -> dict:
        """What a spec expression can read in this instance here: parameters and the stream's sizes."""
        names = dict(cursor.instance.env)
        shape = self.shape(cursor.stream)
        for name in STREAM_NAMES:
            if name not in names:
                if name == "channels":
                    names[name] = shape[-1]
                elif len(shape) == 3:
                    names[name] = shape[AXES[name]]
        return names

    def _sym(self, expr, walk: _Walk) -> Sym:
        """The spec expression `expr` as a Sym: parameters by name, the stream's sizes as leaves."""

        def name(text: str) -> Sym | None:
            if text in walk.params:
                return Sym("param", (text,))
            if text in STREAM_NAMES:
                key = ("stream", walk.stream, text, _shape_sym(walk.shapes[walk.stream], text))
                for cursor in walk.cursors:
                    cursor.instance.leaves[key] = self._names(cursor, walk)[text]
                return Sym("leaf", (key,))
            return None

        return from_syntax(expr, name)

    def _value(self, expr, values: list, walk: _Walk) -> Any:
        """An argument over the instances: written as its expression when it reads names."""
        sym = self._sym(expr, walk)
        if not sym.leaves():
            return sym.evaluate(walk.instances[0]) if walk.instances else values[0]
        traced = Traced(sym, walk.instances)
        if list(traced.values) != list(values):
            raise Varies(f"the expression gives {traced.values}, the calls {values}")
        return traced

    # --- the graph's events ----------------------------------------------------------------------------

    def _take_node(self, cursor: _Cursor, span: Span) -> Node:
        event = cursor.events[cursor.pos] if cursor.pos < len(cursor.events) else None
        if not isinstance(event, Node) or event.span != span:
            raise Varies(f"line {span.line} makes different layers in different calls")
        cursor.pos += 1
        return event

    def _take_call(self, cursor: _Cursor, span: Span) -> Scope:
        event = cursor.events[cursor.pos] if cursor.pos < len(cursor.events) else None
        if not isinstance(event, Scope) or event.span != span:
            raise Varies(f"line {span.line} calls different macros in different calls")
        cursor.pos += 1
        return event


def _shape_sym(shape: Shape, name: str) -> Sym:
    """How a stream size can be written from the shape's expressions (in a module's `__init__`)."""
    axis = AXES[name]
    if name != "channels" and len(shape) != 3:
        return const(None)
    dim = shape[axis]
    return dim.sym if isinstance(dim, Traced) else const(dim)


def _param_sym(name: str, params: list[str]) -> Sym | None:
    return Sym("param", (name,)) if name in params else None


def _holds_layer(call, param: str, program: Program) -> bool:
    value = dict(call.arguments).get(param)
    if isinstance(value, LayerCall):
        return True
    return (
        isinstance(value, Word)
        and (value.text in REGISTRY or value.text in program.defs or value.text == IDENTITY)
        and not value.text.startswith("@")
    )


def python_arg(value: Any) -> Any:
    from archspec.interop.code_values import python_value

    return python_value(value)


def _spec_names(body) -> set[str]:
    from archspec.expand_names import output_sites

    return set(output_sites(body))


def _opaque(value: Traced) -> bool:
    return value.sym.op == "leaf" and value.sym.args[0][0] == "opaque"


def _axis_name(axis: int, rank: int) -> str:
    return "channels" if axis == rank - 1 else ("height", "width")[axis]
