"""The hints of expansion errors: a layer's usage line, a macro's signature, the names nearest to an
unknown layer."""

from __future__ import annotations

from archspec.layers import REGISTRY, TRAILING_WORDS, LayerKind
from archspec.syntax import Def
from archspec.text import nearest, show
from archspec.words import BLOCKS, ELIF, IDENTITY, IF, MERGES, REPEAT, Word

LANGUAGE_DOCS = "docs/spec-language.md (the cnn-arch spec language)"


def unknown_layer_hint(name: str, defs) -> str:
    """The closest layer, macro or block names to a misspelt `name`, and where every layer is listed."""
    words = [n for n in REGISTRY if n not in MERGES] + list(defs) + [IDENTITY]
    shown = [f"the block `{n}:`" if n in BLOCKS else f"`{n}`" for n in nearest(name, [*words, *BLOCKS], 3, 0.5)]
    if shown:
        hint = f"did you mean {shown[0]}?" + (f" Close names: {', '.join(shown[1:])}." if shown[1:] else "")
    else:
        hint = "it is not a layer, a macro defined in this spec, or `identity`."
    return f"{hint} Every layer kind is listed in {LANGUAGE_DOCS}"


def surplus_message(kind: LayerKind, value) -> str:
    if isinstance(value, Word) and value.text in TRAILING_WORDS:
        return f"`{kind.name}` cannot take a trailing `{value.text}`; write it on its own line"
    return (
        f"`{kind.name}` takes {sum(a.positional for a in kind.args)} positional arguments; "
        f"`{show(value)}` is one too many"
    )


def usage(kind: LayerKind) -> str:
    parts = [kind.name, *(a.name.upper() if a.positional else f"[{a.name}=]" for a in kind.args)]
    if kind.takes_suffix:
        parts.append("[bn] [activation]")
    return "usage: " + " ".join(parts)


def signature(definition: Def) -> str:
    params = ", ".join(p.name + ("=..." if p.default is not None else "") for p in definition.params)
    return f"defined as `def {definition.name}({params})` at line {definition.line}"


def block_header(name: str) -> str:
    """How a block's header line reads: `add:`, `repeat N:`, `if COND:`."""
    if name == REPEAT:
        return f"{name} N:"
    return f"{name} COND:" if name in (IF, ELIF) else f"{name}:"
