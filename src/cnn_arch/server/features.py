"""Hover, inlay hints, completion and go-to-definition over an analysis, as LSP types.

The numbers come from the analysis' line facts (`cnn_arch.server.analysis`), the words from the layer registry and
the expander's block names, the rule pages from `cnn-arch rule`: nothing here knows a layer by name.
"""

from __future__ import annotations

from lsprotocol import types
from pygls.workspace.position_codec import PositionCodec

from archspec.layers import REGISTRY
from archspec.layers import TRAILING_WORDS as SUFFIX_WORDS
from archspec.layers.base import REQUIRED, show
from archspec.lint import RULES
from archspec.summary import human_count, rf_text, shape_text
from archspec.words import BLOCKS, MERGES, STREAM_NAMES
from cnn_arch.server.analysis import Analysis, Occurrence, code_before, def_docs, def_signature, word_at
from cnn_arch.server.diagnostics import column_of, position, span_range

MAX_LISTED = 8  # expansions listed in a hover, distinct shapes in a hint


# --- hover ------------------------------------------------------------------------------------------


def hover(analysis: Analysis, codec: PositionCodec, where: types.Position) -> types.Hover | None:
    number = where.line + 1
    text = analysis.lines.line(number)
    found = word_at(text, column_of(analysis.lines, codec, where))
    if found is None:
        return None
    word, start, end = found
    parts: list[str] = []
    if word.upper() in RULES:
        from cnn_arch.cli.rule import rule_docs

        parts.append(rule_docs(RULES[word.upper()]))
    elif text.lstrip().startswith("def ") and analysis.definition(word) is not None:
        parts.append(_def_hover(analysis, word))
    elif code_before(text, start) is not None:
        line_text = _line_hover(analysis, number)
        if line_text:
            parts.append(line_text)
        if word in REGISTRY and text[:start].strip() == "":
            parts.append(_layer_docs(word))
        elif word in STREAM_NAMES:
            parts.append(
                f"`{word}`: the {word} of the current stream, the tensor this line reads (unless a macro parameter of that name hides it)"
            )
    if not parts:
        return None
    span_start = position(analysis.lines, codec, number, start + 1)
    span_end = position(analysis.lines, codec, number, end + 1)
    return types.Hover(
        types.MarkupContent(types.MarkupKind.Markdown, "\n\n---\n\n".join(parts)), types.Range(span_start, span_end)
    )


def _numbers(o: Occurrence) -> list[str]:
    params = f"{o.params:,}"
    if o.non_trainable:
        params += f" ({o.trainable:,} trainable, {o.non_trainable:,} non-trainable)"
    stride = o.last.stride
    rf = rf_text(o.last)
    rf += "" if rf == "global" else f" pixels, stride {shape_text(stride) if stride[0] != stride[1] else stride[0]}"
    lines = [f"- params: {params}", f"- MACs: {o.macs:,} ({human_count(o.macs)})", f"- receptive field: {rf}"]
    if o.layers > 1 and not o.last.is_call:  # a call's header already says it
        lines.append(f"- layers: {o.layers}")
    return lines


def _line_hover(analysis: Analysis, number: int) -> str | None:
    occurrences = analysis.facts.get(number)
    if not occurrences:
        return None
    code = analysis.lines.line(number).split("#", 1)[0].strip()
    if len(occurrences) == 1:
        only = occurrences[0]
        head = f"`{code}` → **{shape_text(only.shape)}**"
        if only.last.is_call and only.layers:
            head += f"\n\nexpansion of `{only.last.label}`: totals of its {only.layers} layers"
        return "\n".join([head, "", *_numbers(only)])
    lines = [f"`{code}`: in {len(occurrences)} expansions", ""]
    alike: dict[tuple, list[Occurrence]] = {}  # expansions with the same numbers read as one entry
    for o in occurrences:
        alike.setdefault((o.shape, o.params, o.macs), []).append(o)
    for group in list(alike.values())[:MAX_LISTED]:
        o = group[0]
        where = f"`{o.call.label}` (line {o.call.line})" if o.call else "top level"
        if len(group) > 1:
            where += f" and {len(group) - 1} more"
        lines.append(f"- {where} → **{shape_text(o.shape)}**, {o.params:,} params, {human_count(o.macs)} MACs")
    if len(alike) > MAX_LISTED:
        lines.append(f"- … and {len(alike) - MAX_LISTED} more kinds")
    total = sum(o.params for o in occurrences)
    lines += ["", f"all expansions: {total:,} params, {human_count(sum(o.macs for o in occurrences))} MACs"]
    return "\n".join(lines)


def _def_hover(analysis: Analysis, name: str) -> str:
    definition = analysis.definition(name)
    parts = [f"```\n{def_signature(analysis.lines, definition)}\n```"]
    docs = def_docs(analysis.lines, definition)
    if docs:
        parts.append(docs)
    calls = [r for r in analysis.calls if r.label.split(" ", 1)[0] == name]
    if calls:
        alike: dict[tuple, list] = {}  # calls with the same arguments and numbers read as one entry
        for r in calls:
            alike.setdefault((r.line, r.label, r.shape, r.params), []).append(r)
        listed = [
            f"- line {r.line} `{r.label}`{f' ×{len(group)}' if len(group) > 1 else ''} → **{shape_text(r.shape)}**, "
            f"{r.params:,} params"
            for r, group in ((group[0], group) for group in alike.values())
        ]
        more = [f"- … and {len(listed) - MAX_LISTED} more"] if len(listed) > MAX_LISTED else []
        times = f"{len(calls)} time{'s' if len(calls) != 1 else ''}"
        parts.append("\n".join([f"called {times}:", *listed[:MAX_LISTED], *more]))
    elif not analysis.errors:
        parts.append("not called")
    return "\n\n".join(parts)


def _layer_docs(name: str) -> str:
    kind = REGISTRY[name]
    lines = [f"`{name}`: {kind.summary}" if kind.summary else f"`{name}`"]
    for arg in kind.args:
        value = str(arg.default).lower() if isinstance(arg.default, bool) else show(arg.default)  # as a spec writes it
        default = "" if arg.default is REQUIRED else f" (default `{value}`)"
        how = "" if arg.positional else "="
        lines.append(f"- `{arg.name}{how}`{default}: {arg.doc}" if arg.doc else f"- `{arg.name}{how}`{default}")
    if kind.takes_suffix:
        lines.append("- trailing `bn` and activation words add those layers")
    return "\n".join(lines)


# --- inlay hints -----------------------------------------------------------------------------------


def inlay_hints(analysis: Analysis, codec: PositionCodec, wanted: types.Range) -> list[types.InlayHint]:
    """`→ 56x56x256` at the end of each line in `wanted` that makes layers; a line inside a `def`
    shows the shapes of its expansions."""
    hints = []
    facts = analysis.facts
    for number in range(wanted.start.line + 1, min(wanted.end.line + 2, len(analysis.lines) + 1)):
        occurrences = facts.get(number)
        if not occurrences:
            continue
        shapes = list(dict.fromkeys(shape_text(o.shape) for o in occurrences))
        label = " | ".join(shapes[:MAX_LISTED]) + (" | …" if len(shapes) > MAX_LISTED else "")
        end = position(analysis.lines, codec, number, len(analysis.lines.line(number).rstrip()) + 1)
        hints.append(types.InlayHint(end, f"→ {label}", kind=types.InlayHintKind.Type, padding_left=True))
    return hints


# --- completion --------------------------------------------------------------------------------------


def completion(analysis: Analysis, codec: PositionCodec, where: types.Position) -> list[types.CompletionItem]:
    """At the start of a line: layer kinds, blocks and macros; after a layer or macro name: its keyword
    arguments (and trailing `bn`/activations where the layer takes them)."""
    text = analysis.lines.line(where.line + 1)
    before = code_before(text, column_of(analysis.lines, codec, where))
    if before is None:
        return []
    words = before.split()
    if not words or (len(words) == 1 and not before[-1].isspace()):
        return _line_starts(analysis)
    if "=" in (words[-1] if not before[-1].isspace() else ""):
        return []
    return _arguments(analysis, words[0], set(words[1:]))


def _line_starts(analysis: Analysis) -> list[types.CompletionItem]:
    kind = types.CompletionItemKind
    items = [
        types.CompletionItem(
            name, kind=kind.Class, detail=layer.summary or None, documentation=_markdown(_layer_docs(name))
        )
        for name, layer in REGISTRY.items()
        if name not in MERGES
    ]
    for block in BLOCKS:  # `repeat` takes its count before the colon, `if`/`elif` their condition
        label, insert = (f"{block}:", f"{block}:")
        if block in ("repeat", "if", "elif"):
            label, insert = (f"{block} {'N' if block == 'repeat' else 'COND'}:", f"{block} ")
        items.append(types.CompletionItem(label, kind=kind.Keyword, detail="block", insert_text=insert))
    items += [types.CompletionItem(word, kind=kind.Keyword) for word in ("identity", "def")]
    for definition in analysis.definitions:
        docs = def_docs(analysis.lines, definition)
        items.append(
            types.CompletionItem(
                definition.name,
                kind=kind.Function,
                detail=def_signature(analysis.lines, definition),
                documentation=_markdown(docs) if docs else None,
            )
        )
    return items


def _arguments(analysis: Analysis, head: str, written: set[str]) -> list[types.CompletionItem]:
    kind = types.CompletionItemKind
    given = {w.split("=", 1)[0] for w in written if "=" in w}
    items = []
    if head in REGISTRY:
        layer = REGISTRY[head]
        for arg in layer.args:
            if not arg.positional and arg.name not in given:
                items.append(
                    types.CompletionItem(
                        f"{arg.name}=", kind=kind.Property, detail=arg.doc or None, insert_text=f"{arg.name}="
                    )
                )
        if layer.takes_suffix:
            items += [
                types.CompletionItem(w, kind=kind.EnumMember, detail="trailing layer") for w in sorted(SUFFIX_WORDS)
            ]
        return items
    definition = analysis.definition(head)
    for param in definition.params if definition else ():
        if param.name not in given:
            items.append(types.CompletionItem(f"{param.name}=", kind=kind.Property, insert_text=f"{param.name}="))
    return items


def _markdown(text: str) -> types.MarkupContent:
    return types.MarkupContent(types.MarkupKind.Markdown, text)


# --- go to definition ------------------------------------------------------------------------------


def definition(analysis: Analysis, codec: PositionCodec, uri: str, where: types.Position) -> types.Location | None:
    """From a macro's name (at a call, or anywhere on a line) to its `def`; from `@e1` to its `-> e1`."""
    text = analysis.lines.line(where.line + 1)
    found = word_at(text, column_of(analysis.lines, codec, where))
    if found is None or code_before(text, found[1]) is None:
        return None
    if found[1] > 0 and text[found[1] - 1] == "@":  # `@e1`: to its `-> e1`
        from cnn_arch.server.tensor_names import tensor_definition

        span = tensor_definition(analysis.module, found[0], where.line + 1)
        return None if span is None else types.Location(uri, span_range(analysis.lines, codec, span))
    target = analysis.definition(found[0])
    if target is None:
        return None
    return types.Location(uri, span_range(analysis.lines, codec, target.span))
