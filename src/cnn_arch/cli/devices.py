"""`cnn-arch devices`: what training would run on (JAX backend, devices, memory, processes), with a
warning when the system has a GPU that JAX does not use."""

from __future__ import annotations

import sys

import typer

from cnn_arch.cli.common import TableOrJson as Format


def register(app: typer.Typer) -> None:
    app.command("devices")(devices_command)


def devices_command(
    format: Format = typer.Option(Format.table, "--output-format", "--format", help="Output format."),
) -> None:
    """Print the JAX backend and every device with its kind and memory, as `cnn-arch train` sees them.

    Warns when a GPU is visible (nvidia-smi, CUDA_VISIBLE_DEVICES, the NVIDIA driver) but JAX runs on
    CPU, with the command that installs JAX's CUDA wheels."""
    from archspec.extras import require

    require("train", "`cnn-arch devices`")
    from archspec.devices import describe

    report = describe()
    if format is Format.json:
        import json

        typer.echo(json.dumps(report.to_json(), indent=2))
        return
    typer.echo("\n".join(report_lines(report)))
    if report.warning:
        sys.stderr.write(f"warning: {report.warning}\n")


def report_lines(report) -> list[str]:
    from archspec.summary import human_bytes
    from archspec.text import table

    def memory(device) -> str:
        if device.memory_limit is None:
            if device.platform == "cpu" and report.host_memory:
                return f"host: {human_bytes(report.host_memory)} available"
            return "not reported"
        used = f", {human_bytes(device.memory_in_use)} in use" if device.memory_in_use is not None else ""
        return f"{human_bytes(device.memory_limit)}{used}"

    count = len(report.devices)
    lines = [
        f"JAX {report.jax_version} (jaxlib {report.jaxlib_version}), backend: {report.backend}",
        f"processes: {report.process_count} (this is process {report.process_index})",
        f"{count} device{'s' if count != 1 else ''}:",
    ]
    rows = [(str(d.id), d.platform, d.kind, str(d.process), memory(d)) for d in report.devices]
    lines += ["  " + line for line in table(("Id", "Platform", "Kind", "Process", "Memory"), rows, right=(0, 3))]
    return lines


def warn_unused_gpu() -> None:
    """The warning of `cnn-arch devices`, on stderr, when it applies (`train` calls it once)."""
    import jax

    from archspec.devices import unused_gpu_warning

    warning = unused_gpu_warning(jax.default_backend())
    if warning:
        sys.stderr.write(f"warning: {warning}\n")
