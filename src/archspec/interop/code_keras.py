"""Keras 3 code for a spec: the functional API, one statement per layer on tensor variables; a macro
is a function of its input tensor (and tensor parameters) that returns its output tensor;
`build_model()` returns the `keras.Model`."""

from __future__ import annotations

from typing import ClassVar

from archspec.interop.code_common import Lines, Renderer, Variant, Writer, indent
from archspec.interop.code_program import CallStmt, IfStmt, Layer, Loop
from archspec.layers import REGISTRY
from archspec.layers.base import Module, Varies

# where a spec size is on a Keras tensor (batch first, channels last)
AXES = {"height": 1, "width": 2, "channels": -1}


def _leaf(key: tuple) -> str:
    if key[0] in ("input", "round", "stream"):
        return f"{key[1]}.shape[{AXES[key[2]]}]"
    raise Varies("a size the code cannot read here")


RENDERER = Renderer(lambda name: name, _leaf)


class KerasWriter(Writer):
    target: ClassVar[str] = "keras"
    facet: ClassVar[str] = "keras_code"
    imports: ClassVar[list[str]] = ["import keras", "from keras import layers"]
    input_var: ClassVar[str] = "inputs"

    def function(self, variant: Variant) -> str:
        code = variant.code
        params, late = self.signature(code, tensors_too=True)
        body = self.render(code.body, RENDERER).body
        head = f"def {variant.name}({', '.join([code.stream, *params])}):"
        return "\n".join([head, *indent(late), *indent(body), f"    return {code.result}"])

    def model(self) -> str:
        statements, source, result = self.program.top(self.input_var, keep=True)
        node = self.program.graph.nodes[0]
        (step,) = REGISTRY["input"].keras_code(node.attrs, [], self.program.shape(0))
        body = self.render(statements, RENDERER).body
        return "\n".join(
            [
                "def build_model():",
                f"    {source} = {step.create}",
                *indent(body),
                f"    return keras.Model({source}, {result})",
            ]
        )

    def layer(self, statement: Layer, renderer: Renderer) -> Lines:
        lines = Lines()
        inputs = statement.inputs
        for step in self.steps(statement):
            if isinstance(step, Module):
                text = step.apply.format(*inputs, m=step.create)
            else:
                text = step.expression.format(*inputs)
            text = renderer.text(text)
            if text != inputs[0] or statement.out != inputs[0]:
                lines.body.append(f"{statement.out} = {text}")
            inputs = [statement.out]
        return lines

    def call(self, statement: CallStmt, renderer: Renderer) -> Lines:
        variant = self.variant_of(statement)
        tensors = dict(statement.tensors)
        args = [statement.stream]
        numeric = iter(self.arguments(statement, variant, renderer.value))
        positional = True
        given = {param for param, _, _ in statement.args}
        for param in variant.code.definition.params:
            if param.name in tensors:
                positional = positional and param.name not in statement.keywords
                args.append(tensors[param.name] if positional else f"{param.name}={tensors[param.name]}")
            elif any(p == param.name for p, _, _ in variant.code.params):
                if param.name not in given:
                    positional = False
                    continue
                text = next(numeric)
                positional = positional and "=" not in text
                args.append(text)
        return Lines(body=[f"{statement.out} = {variant.name}({', '.join(args)})"])

    def conditional(self, statement: IfStmt, renderer: Renderer) -> Lines:
        lines = Lines()
        for index, (test, body) in enumerate(statement.clauses):
            if test is None:
                lines.body.append("else:")
            else:
                lines.body.append(f"{'if' if index == 0 else 'elif'} {renderer.value(test)}:")
            lines.body += indent(self.render(body, renderer).body or ["pass"])
        return lines

    def loop(self, statement: Loop, renderer: Renderer) -> Lines:
        if statement.body is not None:
            try:
                body = self.render(statement.body, renderer).body
                return Lines(body=[f"for _ in range({renderer.value(statement.count)}):", *indent(body or ["pass"])])
            except Varies:
                if statement.rounds is None:
                    raise
        return self.unrolled(statement, renderer)
