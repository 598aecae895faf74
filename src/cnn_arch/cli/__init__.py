"""Thin typer commands: parse options, call `archspec`, render with rich. One file per command."""
