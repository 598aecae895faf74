"""`cnn-arch lint`: design rules over the typed graph, ruff-style.

Rules live one per module in `archspec.lint.rules` and register by code (`RULES`); `lint_source`
runs the selected ones over a spec's text and returns located findings; `archspec.lint.fix` turns
their fixes into text edits; `archspec.lint.output` renders findings in every output format.
"""

from archspec.lint import rules  # noqa: F401  (fills RULES)
from archspec.lint.engine import RULES, Finding, Rule, Settings, lint_source

__all__ = ["RULES", "Finding", "Rule", "Settings", "lint_source"]
