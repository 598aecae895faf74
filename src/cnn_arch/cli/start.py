"""The `cnn-arch` program (its console script and `python -m cnn_arch`), kept light: a command that
runs JAX restarts its process once in the environment `archspec.devices.restart_environment` gives
(glibc's huge pages) before anything heavy is imported. The restart used to happen after typer and
every command's module were imported, which the restarted process then imported again (importing
`cnn_arch.cli.app`: 0.25 s on the busy 2-core machine, `python -X importtime`)."""

from __future__ import annotations

import sys

# The commands that run JAX: `run` starts them in a process set up for XLA:CPU's speed.
JAX_COMMANDS = frozenset({"train", "evaluate", "predict", "compare", "export", "devices"})
# The commands that run with Python's garbage collector paused while they start (`archspec.train.collector`).
PAUSED_COLLECTOR = frozenset({"train", "evaluate", "predict"})


def runs_jax(argv: list[str]) -> bool:
    """Whether `cnn-arch ARGV...` runs JAX: every JAX command, but `compare` only with `--data` and
    `export` only of a run folder (ONNX); code export and a comparison of specs are static commands,
    which a restart would slow by half (0.15 s -> 0.24 s for `export resnet50 --to pytorch`)."""
    from pathlib import Path

    if not argv or argv[0] not in JAX_COMMANDS:
        return False
    if argv[0] == "compare":
        return any(arg == "--data" or arg.startswith("--data=") for arg in argv)
    if argv[0] == "export":
        return any((Path(arg) / "config.json").is_file() for arg in argv[1:] if not arg.startswith("-"))
    return True


def run() -> None:
    """Restart once where the command runs JAX and ask for its CPU devices, then everything is
    `cnn_arch.cli.app.main`'s."""
    if runs_jax(sys.argv[1:]):
        import contextlib
        import os

        from archspec.devices import restart_environment

        environ = restart_environment()
        if environ is not None:
            with contextlib.suppress(OSError):  # cannot restart: run as we are, slower
                os.execve(sys.executable, [sys.executable, "-m", "cnn_arch", *sys.argv[1:]], environ)
        if sys.argv[1] in PAUSED_COLLECTOR:
            from archspec.train import collector

            collector.pause()  # warm gap-head: `train`'s first step 0.1-0.2 s sooner, `evaluate` 0.4-0.6 s
        if sys.argv[1] == "train":  # `train` decides once it knows the model: it may take a process per core
            from archspec.train import cores

            cores.allowed = True
        else:
            from archspec.devices import spread_over_cores

            # Before the command starts JAX: on a CPU, one JAX device per core, over which the batch
            # is split. The user's own device count wins.
            spread_over_cores()
    from cnn_arch.cli.app import main

    main()
