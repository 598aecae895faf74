"""PyTorch and Flax NNX code for a spec: modules whose `__init__` builds the layers, with every size
given (input channels too, as `torch.nn` and `flax.nnx` want them), and whose call applies them to
tensor variables. A macro is a module class; where its calls differ in size its `__init__` takes
the sizes it needs (`in_channels`, and the parameters they are computed from)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from archspec.interop.code_common import Lines, Renderer, Variant, Writer, class_name, indent, safe_name
from archspec.interop.code_program import CallStmt, IfStmt, Layer, Loop
from archspec.interop.code_values import Traced
from archspec.layers.base import Module, Varies


@dataclass
class _Class:
    """What writing one module class has found so far: its attributes, the input channel counts
    and parameters its code reads, and which attribute each call's module is."""

    writer: ModuleWriter
    stream: str  # the variable of its input
    attrs: set[str] = field(default_factory=set)
    channels: list[str] = field(default_factory=list)  # inputs whose channel count `__init__` reads
    kept: list[str] = field(default_factory=list)  # parameters the call reads (kept as `self.name`)
    calls: dict[tuple, tuple[str, Variant]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.init = Renderer(lambda name: name, self._init_leaf)
        self.body = Renderer(self._kept, self._body_leaf)

    def attr(self, base: str) -> str:
        name = safe_name(base)
        index = 1
        while (name if index == 1 else f"{name}_{index}") in self.attrs:
            index += 1
        chosen = name if index == 1 else f"{name}_{index}"
        self.attrs.add(chosen)
        return chosen

    def channel_param(self, var: str) -> str:
        return "in_channels" if var == self.stream else f"{var}_channels"

    def _init_leaf(self, key: tuple) -> str:
        if key[0] == "input" and key[2] == "channels":
            if key[1] not in self.channels:
                self.channels.append(key[1])
            return self.channel_param(key[1])
        if key[0] == "stream":
            fallback = key[3]
            if fallback.op == "const" and fallback.args[0] is None:
                raise Varies("a size `__init__` cannot know")
            return fallback.render(self.init.names)
        if key[0] == "out" and key[2] == "channels" and key[1] in self.calls:
            attr, variant = self.calls[key[1]]
            if variant.exposes_out_channels:
                self.writer.read_out_channels.add(variant.name)
                return f"self.{attr}.out_channels"
        raise Varies("a size that differs between the calls and that `__init__` cannot know")

    def _kept(self, name: str) -> str:
        if name not in self.kept:
            self.kept.append(name)
        return f"self.{name}"

    def _body_leaf(self, key: tuple) -> str:
        if key[0] in ("input", "round", "stream"):
            return f"{key[1]}.shape[{self.writer.axes[key[2]]}]"
        raise Varies("a size the code cannot read here")


OUT_MARK = "  # out_channels of "


class ModuleWriter(Writer):
    base_class: ClassVar[str] = ""
    method: ClassVar[str] = ""  # the method that applies the module
    sequential: ClassVar[str] = ""
    axes: ClassVar[dict[str, int]] = {}  # where a spec size is on a tensor of the framework
    rngs: ClassVar[bool] = False  # whether modules take Flax's random streams
    super_init: ClassVar[bool] = False
    model_doc: ClassVar[str] = ""

    def __init__(self, program, name: str) -> None:
        super().__init__(program, name)
        self.read_out_channels: set[str] = set()  # the classes whose `out_channels` a caller reads

    def write(self) -> str:
        lines = []
        for line in super().write().splitlines():
            if OUT_MARK in line:
                line, variant = line.split(OUT_MARK)
                if variant not in self.read_out_channels:
                    continue
            lines.append(line)
        return "\n".join(lines) + "\n"

    def _head(self, params: list[str]) -> str:
        extra = ["*", "rngs: nnx.Rngs"] if self.rngs else []
        return f"    def __init__({', '.join(['self', *params, *extra])}):"

    def function(self, variant: Variant) -> str:
        code = variant.code
        state = _Class(self, code.stream)
        params, late = self.signature(code, tensors_too=False)
        lines = self.render(code.body, state)
        out_line = []
        channels = code.out_shape[-1] if code.out_shape else None
        if isinstance(channels, Traced):  # callers building on it read its width from the module
            try:  # kept only if a caller reads it (see `write`)
                out_line = [f"self.out_channels = {state.init.value(channels)}{OUT_MARK}{variant.name}"]
                variant.exposes_out_channels = True
            except Varies:
                pass
        variant.channels = list(state.channels)
        order = [code.stream, *code.tensor_vars]
        channel_params = [state.channel_param(v) for v in order if v in state.channels]
        kept = [f"self.{name} = {name}" for name in state.kept]
        init = [*late, *kept, *lines.init, *out_line]
        inputs = ", ".join(["self", code.stream, *code.tensor_vars])
        return "\n".join(
            [
                f"class {class_name(variant.name)}({self.base_class}):",
                self._head([*channel_params, *params]),
                *indent(["super().__init__()"] if self.super_init else [], 2),
                *indent(init or ([] if self.super_init else ["pass"]), 2),
                "",
                f"    def {self.method}({inputs}):",
                *indent(lines.body, 2),
                f"        return {code.result}",
            ]
        )

    def model(self) -> str:
        statements, source, result = self.program.top(self.input_var)
        state = _Class(self, source)
        lines = self.render(statements, state)
        if state.channels or state.kept:
            raise Varies("the model reads a size it cannot know")  # a single instance: cannot happen
        shape = self.program.shape(0)
        return "\n".join(
            [
                f"class Model({self.base_class}):",
                f'    """{self.model_doc.format(shape=self.layout(shape))}"""',
                "",
                self._head([]),
                *indent(["super().__init__()"] if self.super_init else [], 2),
                *indent(lines.init or ([] if self.super_init else ["pass"]), 2),
                "",
                f"    def {self.method}(self, {source}):",
                *indent(lines.body, 2),
                f"        return {result}",
            ]
        )

    def layout(self, shape: tuple) -> str:
        raise NotImplementedError

    # --- statements ------------------------------------------------------------------------------------

    def layer(self, statement: Layer, state: _Class) -> Lines:
        lines = Lines()
        inputs = statement.inputs
        for step in self.steps(statement):
            if isinstance(step, Module):
                attr = state.attr(step.name or statement.kind.name)
                lines.init.append(f"self.{attr} = {state.init.text(step.create)}")
                text = step.apply.format(*inputs, m=f"self.{attr}")
            else:
                text = step.expression.format(*inputs)
            text = state.body.text(text)
            if text != inputs[0] or statement.out != inputs[0]:
                lines.body.append(f"{statement.out} = {text}")
            inputs = [statement.out]
        return lines

    def _construct(self, statement: CallStmt, variant: Variant, state: _Class) -> str:
        shapes = dict(zip([statement.stream, *(v for _, v in statement.tensors)], statement.in_shapes))
        order = [variant.code.stream, *variant.code.tensor_vars]
        passed = [statement.stream, *(v for _, v in statement.tensors)]
        channels = [state.init.value(shapes[passed[i]][-1]) for i, v in enumerate(order) if v in variant.channels]
        args = self.arguments(statement, variant, state.init.value)
        extra = ["rngs=rngs"] if self.rngs else []
        return f"{class_name(variant.name)}({', '.join([*channels, *args, *extra])})"

    def call(self, statement: CallStmt, state: _Class) -> Lines:
        variant = self.variant_of(statement)
        attr = state.attr(variant.code.definition.name)
        state.calls[statement.key] = (attr, variant)
        inputs = ", ".join([statement.stream, *(var for _, var in statement.tensors)])
        return Lines(
            init=[f"self.{attr} = {self._construct(statement, variant, state)}"],
            body=[f"{statement.out} = self.{attr}({inputs})"],
        )

    def conditional(self, statement: IfStmt, state: _Class) -> Lines:
        lines = Lines()
        parts = [(test, self.render(body, state)) for test, body in statement.clauses]
        for phase, renderer in (("init", state.init), ("body", state.body)):
            if all(not getattr(part, phase) for _, part in parts):
                continue
            out = lines.init if phase == "init" else lines.body
            for index, (test, part) in enumerate(parts):
                if test is None and not getattr(part, phase):
                    continue  # an empty `else`
                if test is None:
                    out.append("else:")
                else:
                    out.append(f"{'if' if index == 0 else 'elif'} {renderer.value(test)}:")
                out += indent(getattr(part, phase) or ["pass"])
        return lines

    def loop(self, statement: Loop, state: _Class) -> Lines:
        body = statement.body
        if body is not None and len(body) == 1 and isinstance(body[0], CallStmt):
            call = body[0]
            if call.stream == call.out == statement.var and not call.tensors:
                try:  # rounds of one macro call: built once per round, applied in sequence
                    variant = self.variant_of(call)
                    count = state.init.value(statement.count)
                    built = f"{self.sequential}(*[{self._construct(call, variant, state)} for _ in range({count})])"
                    attr = state.attr(variant.code.definition.name)
                    return Lines(init=[f"self.{attr} = {built}"], body=[f"{call.out} = self.{attr}({call.stream})"])
                except Varies:
                    if statement.rounds is None:
                        raise
        return self.unrolled(statement, state)


class TorchWriter(ModuleWriter):
    target: ClassVar[str] = "pytorch"
    facet: ClassVar[str] = "pytorch_code"
    imports: ClassVar[list[str]] = ["import torch", "import torch.nn.functional as F", "from torch import nn"]
    base_class: ClassVar[str] = "nn.Module"
    method: ClassVar[str] = "forward"
    sequential: ClassVar[str] = "nn.Sequential"
    axes: ClassVar[dict[str, int]] = {"channels": 1, "height": 2, "width": 3}
    super_init: ClassVar[bool] = True
    model_doc: ClassVar[str] = (
        "The network, for input batches {shape} (channels first).\n\n"
        "    `Model().eval()(x)`. BatchNorm's `eps` and `momentum` are written where the spec's differ\n"
        "    from PyTorch's defaults (Keras' momentum 0.99 is PyTorch's 0.01).\n    "
    )

    def layout(self, shape: tuple) -> str:
        return f"(N, {shape[2]}, {shape[0]}, {shape[1]})" if len(shape) == 3 else f"(N, {shape[0]})"


class FlaxWriter(ModuleWriter):
    target: ClassVar[str] = "flax"
    facet: ClassVar[str] = "flax_code"
    imports: ClassVar[list[str]] = ["import jax", "import jax.numpy as jnp", "from flax import nnx"]
    base_class: ClassVar[str] = "nnx.Module"
    method: ClassVar[str] = "__call__"
    sequential: ClassVar[str] = "nnx.Sequential"
    axes: ClassVar[dict[str, int]] = {"channels": -1, "height": 1, "width": 2}
    rngs: ClassVar[bool] = True
    model_doc: ClassVar[str] = (
        "The network (Flax NNX), for input batches {shape}.\n\n"
        "    `model = Model(rngs=nnx.Rngs(0))`; `model.eval()` before inference (BatchNorm's moving\n"
        "    statistics, no dropout), `model.train()` to train.\n    "
    )

    def layout(self, shape: tuple) -> str:
        return "(N, " + ", ".join(map(str, shape)) + ")"
