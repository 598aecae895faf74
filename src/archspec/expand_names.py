"""Named tensors: `-> e1` names a statement's output, `@e1` reads it (a merge branch, the stream, a macro
argument). Each macro call has names of its own: a body reads the tensors it names and those passed to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from archspec.errors import Span, SpecError
from archspec.ir import Node, Origin, located_error
from archspec.source import SourceText
from archspec.syntax import Block, If, Output, Take, TensorRef
from archspec.text import did_you_mean, show
from archspec.words import Word


@dataclass
class Binding:
    node: int  # the IR node the name stands for
    span: Span  # where the tensor was named (`-> e1`), or the call's argument for a macro parameter
    read: bool = False
    parameter: str | None = None  # the macro parameter's name, for a tensor passed in


def output_sites(body: Iterable) -> dict[str, Span]:
    """Every `-> name` written in a body (blocks included, `def`s not): the first place of each name."""
    found: dict[str, Span] = {}
    stack = list(body)
    while stack:
        statement = stack.pop()
        output = getattr(statement, "output", None)
        if isinstance(output, Output) and (output.name not in found or _before(output.span, found[output.name])):
            found[output.name] = output.span
        if isinstance(statement, Block):
            stack.extend(statement.body)
        elif isinstance(statement, If):
            stack.extend(child for clause in statement.clauses for child in clause.body)
    return found


def _before(a: Span, b: Span) -> bool:
    return (a.line, a.column) < (b.line, b.column)


class Names:
    """The named tensors of the top level or of one macro call."""

    def __init__(
        self,
        body: Iterable,
        source: SourceText,
        outer: Names | None = None,
        params: dict[str, Binding] | None = None,
        macro: str | None = None,
        numbers: dict | None = None,
    ) -> None:
        self._bound: dict[str, Binding] | None = dict(params or {})
        self.restore = None  # the incremental expander's: sets `bound` when it is first read
        self.body = body  # its `-> name` sites are looked up only to explain an unknown name
        self.source = source
        self.outer = outer
        self.macro = macro
        self.numbers = numbers or {}  # the call's other arguments, to explain `@p` for one of them
        # (call depth, node, name) of every tensor named anywhere in the spec, shared by all calls
        self.given: list[tuple[int, int, str]] = outer.given if outer is not None else []
        self.depth = outer.depth + 1 if outer is not None else 0
        self.log: list | None = None  # while a top-level statement is recorded (archspec.expand_memo)

    @property
    def bound(self) -> dict[str, Binding]:
        """Each name → the tensor it stands for. Bindings are replaced, never changed, so a copy of the
        dict is a snapshot (the incremental expander keeps them)."""
        if self._bound is None:
            self._bound = self.restore()
        return self._bound

    @bound.setter
    def bound(self, value: dict[str, Binding]) -> None:
        self._bound = value

    def _error(self, message: str, span: Span, origins: tuple[Origin, ...], hint: str | None = None) -> SpecError:
        return located_error(message, span, origins, self.source, hint)

    # --- reading -------------------------------------------------------------------------------

    def read(self, ref: TensorRef, origins: tuple[Origin, ...]) -> int:
        """The node `@name` stands for; refuses an unknown name or one read before it is defined."""
        binding = self.bound.get(ref.name)
        if binding is not None:
            if not binding.read:
                self.bound[ref.name] = Binding(binding.node, binding.span, True, binding.parameter)
            if self.log is not None:
                self.log.append(("read", ref.name, binding.node, binding.span))
            return binding.node
        name = ref.name
        sites = output_sites(self.body)
        if name in sites:
            raise self._error(
                f"`@{name}` is read before it is defined",
                ref.span,
                origins,
                hint=f"`-> {name}` names a tensor at line {sites[name].line}; a name can only be read below it",
            )
        hint = did_you_mean(name, self.bound, "`@{}`")
        if name in self.numbers:
            hint = (
                f"`{name}` is a parameter of `{self.macro}` holding `{show(self.numbers[name])}`, not a tensor: "
                f"call it with `{name}=@tensor`"
            )
        if hint is None and self.macro is not None and self._outer_knows(name):
            hint = (
                f"a macro only sees the tensors it names and those passed to it: give `{self.macro}` a "
                f"parameter and call it with `{name}=@{name}`"
            )
        if hint is None:
            hint = (
                "tensors defined here: " + ", ".join(f"`@{n}`" for n in self.bound)
                if self.bound
                else "name a tensor first: a line ending in `-> name`"
            )
        raise self._error(f"unknown tensor `@{name}`", ref.span, origins, hint=hint)

    def _outer_knows(self, name: str) -> bool:
        outer = self.outer
        while outer is not None:
            if name in outer.bound:
                return True
            outer = outer.outer
        return False

    def argument(self, ref: TensorRef, parameter: str, origins: tuple[Origin, ...]) -> Binding:
        """A tensor passed to a macro: the callee's binding of `parameter`."""
        node = self.read(ref, origins)
        return Binding(node, self.bound[ref.name].span, parameter=parameter)

    # --- naming --------------------------------------------------------------------------------

    def define(self, output: Output, node: int, origins: tuple[Origin, ...]) -> None:
        """Name `node`'s output. A name may be given again (a repeat's next round, a value carried
        through a loop) once its tensor has been read; naming over an unread tensor is refused."""
        earlier = self.bound.get(output.name)
        if earlier is not None and not earlier.read and earlier.span != output.span:
            where = (
                f"parameter `{earlier.parameter}`"
                if earlier.parameter
                else f"the tensor named at line {earlier.span.line}"
            )
            raise self._error(
                f"`{output.name}` already names {where}, which nothing has read yet",
                output.span,
                origins,
                hint="give this tensor another name, or read the first one before naming another",
            )
        if self.log is not None:
            self.log.append(("define", output.name, node, output.span, None if earlier is None else earlier.read))
        self.bound[output.name] = Binding(node, output.span)
        self.given.append((self.depth, node, output.name))

    def bind(self, output: Output, node: int) -> None:
        """Name the output of a statement that failed (`node` is unknown, or the statement's input):
        reading the name is no error, and naming it again none either."""
        if self.log is not None:
            self.log.append(("bind", output.name, node, output.span))
        self.bound[output.name] = Binding(node, output.span, read=True)

    def replay_read(self, name: str) -> None:
        binding = self.bound[name]
        if not binding.read:
            self.bound[name] = Binding(binding.node, binding.span, True, binding.parameter)

    def replay_define(self, name: str, node: int, span: Span) -> None:
        self.bound[name] = Binding(node, span)

    def replay_bind(self, name: str, node: int, span: Span) -> None:
        self.bound[name] = Binding(node, span, read=True)

    def graph_names(self) -> tuple[tuple[int, str], ...]:
        """(node, name) pairs for the graph, ordered so that the name a reader sees last for a node is
        the one given nearest the top level (a call's `-> n1`, not the next call's `identity -> x`)."""
        order = sorted(range(len(self.given)), key=lambda i: (-self.given[i][0], -i))
        return tuple(self.given[i][1:] for i in order)

    def describe(self, statement) -> str | None:
        """How a merge's listing names a branch that is a named tensor: "@e1, named at line 3"."""
        if not isinstance(statement, Take):
            return None
        binding = self.bound.get(statement.ref.name)
        if binding is None:
            return None
        if binding.parameter is not None:
            return f"@{statement.ref.name}, line {statement.line}"
        return f"@{statement.ref.name}, named at line {binding.span.line}"

    def names_of(self, node: int) -> list[str]:
        return [name for name, binding in self.bound.items() if binding.node == node and binding.parameter is None]


class NamedTensors:
    """The expander's part for named tensors (mixed into `archspec.expand._Expander`)."""

    def _named_statement(self, statement, current: int, ctx) -> int:
        if statement.output is not None:  # `... -> name`: expand the statement, then name its output
            current = self._statement(strip_output(statement), current, ctx)
            ctx.names.define(statement.output, current, ctx.origins)
            return current
        self._spend(1, statement, ctx)  # `@name` alone on a line
        return ctx.names.read(statement.ref, ctx.origins)

    def _argument(self, name: str, expr, ctx, tensors: dict):
        """A macro argument's value; a tensor (`@c1`) is bound in `tensors` and shows as the word `@c1`."""
        if isinstance(expr, TensorRef):
            tensors[name] = ctx.names.argument(expr, name, ctx.origins)
            return Word(f"@{expr.name}")
        return self._eval(expr, ctx)

    def _tensor_not_a_value(self, expr: TensorRef, ctx) -> SpecError:
        return self._error(
            f"a tensor (`@{expr.name}`) can only be the argument of a macro",
            expr.span,
            ctx,
            hint="layers take numbers, sizes and words",
        )


def strip_output(statement):
    """The statement without its `-> name`, so expanding it does not name it again."""
    from dataclasses import replace

    return replace(statement, output=None)


def check_reaches_output(nodes: list[Node], output: int, source: SourceText) -> None:
    """Refuse a layer whose output nothing reads: with named tensors a stream can be left behind, and
    a model (Keras', the Flax one) would silently drop it while the counts kept it."""
    reached = [False] * len(nodes)
    reached[output] = True
    for node in reversed(nodes[: output + 1]):
        if reached[node.id]:
            for i in node.inputs:
                reached[i] = True
    for node in nodes:
        if not reached[node.id]:
            raise located_error(
                f"the output of `{node.label}` is never used: no later layer reads it and it is not the model's output",
                node.span,
                node.origins,
                source,
                hint="name it with `-> name` and read it with `@name`, or remove it",
            )
