"""The stand-alone parser that runs (`archspec/_lark_parser.py`) is generated from grammar.lark:
this fails when someone edits the grammar and forgets to regenerate it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

GRAMMAR = Path(__file__).resolve().parents[1] / "src" / "archspec" / "grammar.lark"
REGENERATE = "python -m lark.tools.standalone src/archspec/grammar.lark -o src/archspec/_lark_parser.py"


def test_generated_parser_has_the_grammars_rules_and_terminals():
    # The generator numbers its parse states differently on each run, so compare what it was built
    # from (rules and terminals), not its text.
    from lark import Lark

    from archspec._lark_parser import Lark_StandAlone

    fresh = Lark.open(str(GRAMMAR), parser="lalr", maybe_placeholders=False)
    generated = Lark_StandAlone()
    assert sorted(map(str, fresh.rules)) == sorted(map(str, generated.rules)), f"regenerate: {REGENERATE}"

    def terminals(parser):
        return sorted((t.name, t.pattern.value, t.priority) for t in parser.terminals)

    assert terminals(fresh) == terminals(generated), f"regenerate: {REGENERATE}"


def test_parsing_does_not_need_lark_installed():
    code = (
        "import sys; sys.modules['lark'] = None\n"
        "from archspec.compile import compile_spec\n"
        "print(compile_spec('input 8x8x1\\nconv 4 3\\ngap\\n').params)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "40"
