"""`cnn-arch export SPEC --to keras|flax|pytorch`: a spec as readable Python that builds the same
network. Macros become functions (Keras) or modules (PyTorch, Flax NNX), named tensors variables,
`repeat`/`xN` loops, merge blocks the framework's idiom; each layer is written by its kind.
"""

from __future__ import annotations

TARGETS = ("keras", "flax", "pytorch")


def export_spec(text: str, name: str, target: str, input_shape: tuple[int, ...] | None = None) -> str:
    """Python source for `target` that builds the network of spec `text`. Raises `SpecError` for a
    spec that does not compile or a layer the target cannot write, `UserError` for an unknown target."""
    from archspec.compile import compile_with_syntax
    from archspec.errors import UserError

    if target not in TARGETS:
        raise UserError(f"`--to` must be one of {', '.join(TARGETS)}; got `{target}`")
    module, typed = compile_with_syntax(text, name, input_shape)
    return formatted(write_code(module, typed, name, target))


def write_code(module, typed, name: str, target: str, logits: bool = False) -> str:
    """The code of a compiled spec (its syntax tree and typed graph) for `target`, unformatted.
    `logits=True` leaves out a final softmax or sigmoid (a training loop's loss takes logits)."""
    from archspec.interop.code_program import Program

    if target == "keras":
        from archspec.interop.code_keras import KerasWriter as Writer
    elif target == "flax":
        from archspec.interop.code_modules import FlaxWriter as Writer
    else:
        from archspec.interop.code_modules import TorchWriter as Writer
    return Writer(Program(typed, module, logits), name).write()


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
