"""Go-to-definition of a named tensor: from `@e1` to the `-> e1` that names it, in the same body (a
macro's names are its own), or to the macro parameter it was passed as."""

from __future__ import annotations

from archspec.errors import Span
from archspec.syntax import Block, Def, If, Module


def tensor_definition(module: Module, name: str, line: int) -> Span | None:
    """Where `@name` read on 1-based `line` is named: the last `-> name` above it in its body (a later
    one where none is above: a name read in a repeat before it is given), or the parameter."""
    definition = next((d for d in module.defs if _inside(d, line)), None)
    body = definition.body if definition is not None else module.body
    sites = _all_sites(body, name)
    above = [span for span in sites if span.line < line]
    if above:
        return max(above, key=lambda s: (s.line, s.column))
    if definition is not None:
        param = next((p for p in definition.params if p.name == name), None)
        if param is not None:
            return param.span
    return min(sites, key=lambda s: (s.line, s.column)) if sites else None


def _inside(definition: Def, line: int) -> bool:
    last = definition.line
    stack = list(definition.body)
    while stack:
        statement = stack.pop()
        last = max(last, statement.span.line)
        if isinstance(statement, Block):
            stack.extend(statement.body)
        elif isinstance(statement, If):
            stack.extend(child for clause in statement.clauses for child in clause.body)
    return definition.line <= line <= last


def _all_sites(body, name: str) -> list[Span]:
    found: list[Span] = []
    stack = list(body)
    while stack:
        statement = stack.pop()
        output = getattr(statement, "output", None)
        if output is not None and output.name == name:
            found.append(output.span)
        if isinstance(statement, Block):
            stack.extend(statement.body)
        elif isinstance(statement, If):
            stack.extend(child for clause in statement.clauses for child in clause.body)
    return found
