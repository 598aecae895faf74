"""`cnn-arch export SPEC --to keras|flax|pytorch`: a spec as readable Python that builds the same
network. Macros become functions, `repeat`/`xN` become loops, merge blocks the framework's idiom.

Keras and Flax (linen, whose modules infer their input sizes as Keras layers do) are written in
the functional style, one statement per layer, by `FunctionalWriter`; PyTorch as nested modules.
"""

from __future__ import annotations

from typing import Any

from archspec.interop.lowering import CallOp, Function, LayerOp, MergeOp, Program, RepeatOp, Sym, lower

TARGETS = ("keras", "flax", "pytorch")

MAKE_DIVISIBLE = '''def make_divisible(value, divisor=8, min_value=None):
    """Round `value` to a multiple of `divisor`, never dropping more than 10% (Keras/TF-slim rule)."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded'''


def export_spec(text: str, name: str, target: str, input_shape: tuple[int, ...] | None = None) -> str:
    """Python source for `target` that builds the network of spec `text`. Raises `SpecError` for a
    spec that does not compile, `UserError` for a layer the target has no equivalent for."""
    from archspec.compile import compile_with_syntax
    from archspec.errors import SourceText, UserError

    module, typed = compile_with_syntax(text, name, input_shape)
    program = lower(module, typed, SourceText(name, text))
    if target == "keras":
        from archspec.interop.code_keras import KerasWriter as Writer
    elif target == "flax":
        from archspec.interop.code_flax import FlaxWriter as Writer
    elif target == "pytorch":
        from archspec.interop.code_torch import TorchWriter as Writer
    else:
        raise UserError(f"`--to` must be one of {', '.join(TARGETS)}; got `{target}`")
    return formatted(Writer(program, name, typed).write())


def formatted(code: str) -> str:
    """`code` through `ruff format` (line length 100) when ruff is installed (the `interop` extra),
    else as written, which is already close to that layout."""
    import subprocess

    try:
        from ruff.__main__ import find_ruff_bin
    except ImportError:
        return code
    command = [find_ruff_bin(), "format", "--isolated", "--line-length", "100", "--stdin-filename", "model.py", "-"]
    result = subprocess.run(command, input=code, capture_output=True, text=True, check=False)
    return result.stdout if result.returncode == 0 else code


def assemble(head: str, imports: list[str], blocks: list[str]) -> str:
    """The file: docstring, the imports the code uses (by their bound name), blocks two lines apart."""
    code = "\n\n\n".join(blocks)
    used = [line for line in imports if f"{line.split()[-1]}." in code or f"{line.split()[-1]}(" in code]
    standard = [line for line in used if line == "import math"]  # the standard library first, as isort does
    groups = [group for group in (standard, [line for line in used if line not in standard]) if group]
    return head + "\n\n" + "\n\n".join("\n".join(group) for group in groups) + "\n\n\n" + code + "\n"


def literal(value: Any) -> str:
    """A converted attribute value as Python source (a square size `(3, 3)` reads `3`)."""
    if isinstance(value, Sym):
        return value.text
    if isinstance(value, tuple):
        if len(value) == 2 and value[0] == value[1] and not isinstance(value[0], tuple):
            return literal(value[0])
        return "(" + ", ".join(literal(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, str):
        return f'"{value}"'
    if hasattr(value, "text"):  # a Word
        return f'"{value.text}"'
    return repr(value)


def call(function: str, *args: str, **kwargs: str | None) -> str:
    """`function(a, b, k=v)`, leaving out keywords whose value is None."""
    parts = [*args, *(f"{k}={v}" for k, v in kwargs.items() if v is not None)]
    return f"{function}({', '.join(parts)})"


class FunctionalWriter:
    """One statement per layer on a stream variable (`x = Layer(...)(x)`); subclasses say how each
    layer, merge and the file around them read."""

    extra_params = ""  # after the function's own parameters, e.g. ", train"

    def __init__(self, program: Program, name: str, typed) -> None:
        self.program = program
        self.name = name
        self.typed = typed
        self.helpers: set[str] = set(program.helpers)

    # --- what subclasses write ---------------------------------------------------------------

    def layer(self, op: LayerOp, x: str, out: str) -> list[str]:
        """Statements applying `op` to `x` and binding the result to `out`."""
        raise NotImplementedError

    def merge(self, kind: str, branches: list[str]) -> str:
        raise NotImplementedError

    def model(self, body: list[str]) -> list[str]:
        raise NotImplementedError

    def imports(self) -> list[str]:
        raise NotImplementedError

    def helper_source(self) -> list[str]:
        return [MAKE_DIVISIBLE] if "make_divisible" in self.helpers else []

    # --- the shared walk -------------------------------------------------------------------

    def write(self) -> str:
        functions = [self.function(f) for f in self.program.functions]
        body = self.statements(self.program.body, "x", 1)
        blocks = [*self.helper_source(), *functions, "\n".join(self.model(body))]
        head = f'"""Generated by `cnn-arch export {self.name} --to {self.target}`."""'
        return assemble(head, ["import math", *self.imports()], blocks)

    def function(self, function: Function) -> str:
        params = ", ".join(p if d is None else f"{p}={d}" for p, d in function.params)
        lines = [f"def {function.name}(x{', ' if params else ''}{params}{self.extra_params}):"]
        for param, default in function.late_defaults:
            lines += [f"    if {param} is None:", f"        {param} = {default}"]
        lines += [*self.statements(function.body, "x", 1), "    return x"]
        return "\n".join(lines)

    def statements(self, ops: list, x: str, depth: int, out: str | None = None) -> list[str]:
        """The statements of `ops` reading stream `x`; the first binds `out` (default `x`), the rest
        continue on `out`: so a branch starts from the block's input without a copy."""
        pad = "    " * depth
        lines: list[str] = []
        out = out or x
        for op in ops:
            if isinstance(op, LayerOp):
                lines += [pad + line for line in self.layer(op, x, out)]
            elif isinstance(op, CallOp):
                args = [x, *op.args, *(f"{k}={v}" for k, v in op.kwargs)]
                lines.append(f"{pad}{out} = {op.name}({', '.join(args)}{self.call_extra})")
            elif isinstance(op, RepeatOp):
                if x != out:
                    lines.append(f"{pad}{out} = {x}")
                lines.append(f"{pad}for _ in range({op.count}):")
                lines += self.statements(op.body, out, depth + 1) or [pad + "    pass"]
            elif isinstance(op, MergeOp):
                names = []
                for index, branch in enumerate(op.branches, start=1):
                    if not branch:
                        names.append(x)  # identity: the block's input itself
                        continue
                    branch_name = f"{out}_{index}" if out != "x" else f"branch_{index}"
                    lines += self.statements(branch, x, depth, branch_name)
                    names.append(branch_name)
                lines.append(f"{pad}{out} = {self.merge(op.kind, names)}")
            x = out
        return lines

    call_extra = ""  # after a macro call's arguments, e.g. ", train=train"
    target = ""
