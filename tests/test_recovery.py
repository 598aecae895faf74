"""Compiling past errors: every independent error of a spec is reported, in line order, and every layer
whose inputs are known is typed as it is once the errors are fixed (the fixed spec, compiled the normal
way, is the reference). `summarize` lists them all, compiler-style, with exit code 2."""

from __future__ import annotations

import pytest

from archspec import templates
from archspec.compile import CheckCache, check_spec, compile_with_syntax
from archspec.errors import SpecErrors

# Five mistakes, each independent of the others (the fixed spec is FIXED below).
BROKEN = """def block(f):
    conv f 3 padding=same relu
    conv f 3 paddin=same
    bn

input 32x32x3
conv 16 3 padding=same relu -> stem
add:
    conv 16 1 stride=1 )
    branch:
        conv 16 3 padding=same
        relu
block 16 -> b
@stem
dropout 1.5
conv 16 3 padding=same relu
conv 16 3 padding=same bogus=1
add:
    @b
    identity
gap
dense 10 softmax
"""
FIXED = (
    BROKEN.replace("paddin=", "padding=")
    .replace("stride=1 )", "stride=1")
    .replace("dropout 1.5", "dropout 0.5")
    .replace(" bogus=1", "")
)
ERRORS = [  # (line, column, words of the message)
    (3, 14, "`conv` has no argument `paddin`"),
    (9, 24, "unexpected `)`"),
    (15, 9, "`rate` (=1.5) must be at least 0 and below 1"),
    (17, 24, "`conv` has no argument `bogus`"),
]


def shapes_by_line(module_text: str, checked=None) -> dict[int, tuple]:
    """The output shape of each line's last layer, at top level (the reference: a normal compile)."""
    if checked is None:
        _, typed = compile_with_syntax(module_text)
        graph, infos = typed.graph, typed.infos
    else:
        graph, infos = checked.graph, checked.infos
    found = {}
    for node in graph.nodes:
        if not node.origins and node.scope is None and infos[node.id] is not None:
            found[node.line] = infos[node.id].shape
    return found


def test_every_error_is_reported_in_line_order():
    checked = check_spec(BROKEN, "spec.arch")
    assert [(e.line, e.column) for e in checked.errors] == [(line, column) for line, column, _ in ERRORS]
    for error, (_, _, words) in zip(checked.errors, ERRORS):
        assert words in error.message
    assert checked.typed is None and checked.more == 0


def test_lines_whose_inputs_are_known_keep_the_fixed_specs_shapes():
    reference = shapes_by_line(FIXED)
    recovered = shapes_by_line(BROKEN, check_spec(BROKEN, "spec.arch"))
    # input and stem come before every error; after the broken `add:` and macro call, `@stem` continues
    # from a named tensor, and `dropout 1.5` cannot change its input's shape: line 16's input is known
    assert {line: recovered[line] for line in (6, 7, 16)} == {line: reference[line] for line in (6, 7, 16)}
    assert not {8, 13, 17, 18, 21, 22} & set(recovered)  # the `add`, the call and what follows the last error
    # the other branch of the broken `add:` keeps its shapes
    checked = check_spec(BROKEN, "spec.arch")
    branch = [checked.infos[n.id].shape for n in checked.graph.nodes if n.line in (11, 12)]
    assert branch == [(32, 32, 16), (32, 32, 16)]


def test_a_def_keeps_its_other_lines_when_one_does_not_parse():
    text = "def f(a):\n    conv a 3 )\n    relu\n    conv a ,\n    conv a 1\ninput 8x8x1\nf 4\nconv 2 1\n"
    checked = check_spec(text, "spec.arch")
    assert [(e.line, e.message) for e in checked.errors] == [(2, "unexpected `)`"), (4, "unexpected `,`")]
    assert all(n.line not in (5, 8) or checked.infos[n.id] is None for n in checked.graph.nodes)


def test_a_correct_spec_checks_to_the_same_typed_graph():
    for name in templates.names():
        text = templates.path(name).read_text(encoding="utf-8")
        module, typed = compile_with_syntax(text, name)
        checked = check_spec(text, name, cache=CheckCache())
        assert checked.errors == () and checked.module == module
        graph = checked.typed.graph
        assert (graph.nodes, graph.scopes, graph.names) == (typed.graph.nodes, typed.graph.scopes, typed.graph.names)
        assert checked.typed.infos == typed.infos, name


def test_compile_raises_every_error_and_the_first_is_its_own():
    with pytest.raises(SpecErrors) as caught:
        compile_with_syntax(BROKEN, "spec.arch")
    assert len(caught.value.errors) == len(ERRORS)
    assert caught.value.line == 9  # the one a normal compile stops at: parsing comes first


def test_summarize_lists_every_error_compiler_style(cli, tmp_path):
    path = tmp_path / "broken.arch"
    path.write_text(BROKEN, encoding="utf-8")
    result = cli("summarize", str(path))
    assert result.code == 2 and result.out == ""
    heads = [line for line in result.err.splitlines() if ": error: " in line]
    assert heads == [f"{path}:{line}:{column}: error: {words}" for line, column, words in ERRORS] or [
        head.split(": error: ")[0] for head in heads
    ] == [f"{path}:{line}:{column}" for line, column, _ in ERRORS]
    assert " 15 | dropout 1.5\n    |         ^^^" in result.err
    assert result.err.rstrip().endswith(f"error: could not compile `{path}` due to {len(ERRORS)} errors")
    assert "Traceback" not in result.err


def test_a_spec_with_one_error_reads_as_before(cli, tmp_path):
    path = tmp_path / "one.arch"
    path.write_text("input 8x8x1\nconv 4 3\nmaxpool 2\nconv 4 3\nmaxpool 5\ndense 10 softmax\n", encoding="utf-8")
    result = cli("summarize", str(path))
    assert result.code == 2
    assert result.err.startswith(f"{path}:5:1: error: maxpool 5 needs at least 5x5 input, got 1x1\n")
    assert "could not compile" not in result.err


def test_statement_by_statement_parsing_reads_every_template_as_a_whole_parse_does():
    from archspec.parse import parse
    from archspec.parse_incremental import StatementCache, parse_incremental

    def parse_document(text: str, name: str, cache: StatementCache):
        """The language server's parse of a new version, every statement read at its place."""
        return parse_incremental(text, name, cache)._replace(module=None), cache.materialized()

    for name in templates.names():
        text = templates.path(name).read_text(encoding="utf-8")
        cache = StatementCache()
        parse_document("input 8x8x1\n", name, cache)  # then every statement of the template is read on its own
        parsed, module = parse_document(text, name, cache)
        assert (module, parsed.errors) == (parse(text, name), ()), name
        edited = text.replace("\n", "\n\n", 1)  # every statement moves a line
        parsed, module = parse_document(edited, name, cache)
        assert (module, parsed.errors) == (parse(edited, name), ()), name


def test_an_edited_document_checks_as_it_would_from_scratch():
    """The language server's cache (each statement's parse, expansion and infos, taken whole, replayed,
    renumbered or moved while nothing it read has changed) must never change a result: after each edit,
    the same graph, infos and errors as checking the text anew, and the same syntax tree (read at its
    place). Edits that keep, change and break shapes, move lines, in macros and named tensors."""
    import random

    from tests.editing import random_edit

    chooser = random.Random(22)
    for name in ("resnet50", "nasnet-mobile", "unet", "efficientnet-b0"):
        lines = templates.path(name).read_text(encoding="utf-8").split("\n")
        cache = CheckCache()
        check_spec("\n".join(lines), name, cache=cache)
        for _ in range(12):
            edit = random_edit(chooser, lines)
            text = "\n".join(lines)
            kept, fresh = check_spec(text, name, cache=cache), check_spec(text, name)
            assert (kept.graph.nodes, kept.graph.scopes, kept.graph.names) == (
                fresh.graph.nodes,
                fresh.graph.scopes,
                fresh.graph.names,
            ), (name, edit)
            assert kept.infos == fresh.infos and kept.module == fresh.module, (name, edit)
            assert [(e.span, e.message) for e in kept.errors] == [(e.span, e.message) for e in fresh.errors]


def test_checking_stops_after_fifty_errors_and_says_where(cli, tmp_path):
    """A garbled file (20,000 lines that do not parse) is refused after 50 errors, as clang stops at 20,
    not after 20,000: the last diagnostic says where checking stopped."""
    checked = check_spec("input 8x8x1\n" + "conv 3 (\n" * 20_000, "garbled.arch")
    assert len(checked.errors) == 51 and checked.errors[-1].line == 52
    assert checked.errors[-1].message == "stopped after 50 errors: the spec from here on is not checked"
    path = tmp_path / "many.arch"
    path.write_text("input 8x8x1\n" + "reluu\n" * 60, encoding="utf-8")
    result = cli("summarize", str(path))
    assert result.code == 2 and result.err.count(": error: unknown layer `reluu`") == 50
    assert result.err.rstrip().endswith(f"error: could not compile `{path}` due to more than 50 errors")
