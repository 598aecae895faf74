"""`cnn-arch export SPEC --to keras|flax|pytorch`: a spec as readable Python that builds the same
network. Macros become functions, `repeat`/`xN` become loops, merge blocks the framework's idiom.

Keras and Flax (linen, whose modules infer their input sizes as Keras layers do) are written in
the functional style, one statement per layer, by `FunctionalWriter`; PyTorch as nested modules.
"""

from __future__ import annotations

from archspec.interop.lowering import lower

TARGETS = ("keras", "flax", "pytorch")


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
