"""Faults of the machine, not the user's mistakes, end in a message and an exit code, never a traceback:
output to a full disk (`> /dev/full`) or a closed pipe (`| head -1`), stdin past the size limit, a
spec too long to parse; and `lint --fix` keeps what it does not own, such as a byte-order mark."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

# Small outputs fail when flushed at the end, large ones (resnet50's) in the middle of a write.
WRITERS = [
    ("summarize", "resnet50"),
    ("summarize", "lenet5", "--output-format", "json"),
    ("lint", "lenet5"),
    ("lint", "lenet5", "--output-format", "sarif"),
    ("export", "lenet5", "--to", "keras"),
    ("templates",),
    ("draw", "resnet50", "--depth", "2", "-o", "-"),  # a depth given: no folding message
    ("rule", "--all"),
    ("compare", "lenet5", "gap-head"),
]


@contextlib.contextmanager
def _closed_pipe():
    """A stream whose reader has gone: every write fails with EPIPE, as after `| head -1`."""
    read, write = os.pipe()
    os.close(read)
    with open(write, "w", encoding="utf-8") as stream:
        yield stream


def _main_with_stdout(stream, *args: str) -> tuple[int, str]:
    """Run `cnn-arch ARGS` in this process with `stream` as its stdout: (exit code, stderr)."""
    from cnn_arch.cli.app import main

    err = io.StringIO()
    saved = sys.stdout, sys.stderr, sys.argv
    sys.stdout, sys.stderr, sys.argv = stream, err, ["cnn-arch", *args]
    try:
        main()
    except SystemExit as exit:
        return exit.code, err.getvalue()
    finally:
        sys.stdout, sys.stderr, sys.argv = saved
    raise AssertionError("main() returns through sys.exit")


@pytest.mark.parametrize("args", WRITERS, ids=" ".join)
def test_a_full_disk_is_one_line_and_exit_2(args):
    with open("/dev/full", "w", encoding="utf-8") as full:
        code, err = _main_with_stdout(full, *args)
    assert (code, err) == (2, "error: cannot write the output: No space left on device\n")


@pytest.mark.parametrize("args", WRITERS, ids=" ".join)
def test_a_closed_pipe_ends_quietly_with_141(args):
    with _closed_pipe() as stream:
        code, err = _main_with_stdout(stream, *args)
    assert (code, err) == (141, "")  # as a shell reports `cat file | head -1`'s writer: SIGPIPE, no message


def _cnn_arch(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from cnn_arch.cli.app import main; main()", *args], capture_output=True, **kwargs
    )


def test_the_real_process_leaves_no_trace_at_exit():
    # a stream that fails at the interpreter's last flush would print "Exception ignored ..." and exit 120
    with open("/dev/full", "wb") as full:
        done = subprocess.run(
            [sys.executable, "-c", "from cnn_arch.cli.app import main; main()", "summarize", "lenet5"],
            stdout=full,
            stderr=subprocess.PIPE,
        )
    assert (done.returncode, done.stderr) == (2, b"error: cannot write the output: No space left on device\n")
    read, write = os.pipe()
    os.close(read)
    done = subprocess.run(
        [sys.executable, "-c", "from cnn_arch.cli.app import main; main()", "templates"],
        stdout=write,
        stderr=subprocess.PIPE,
    )
    os.close(write)
    assert (done.returncode, done.stderr) == (141, b"")


def test_stdin_past_the_size_limit_is_refused_at_the_limit():
    started = time.perf_counter()
    with open("/dev/zero", "rb") as zeros:
        done = _cnn_arch("lint", "-", stdin=zeros)
    assert done.returncode == 2
    assert b"stdin: error: is larger than 1,000,000 bytes; a spec is a short text file" in done.stderr
    assert time.perf_counter() - started < 10  # not 2 GB read until memory runs out


def test_stdin_that_is_not_text_is_refused(cli, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"input 8x8x1\n\xff\n")))
    result = cli("lint", "-")
    assert result.code == 2 and "stdin: error: is not UTF-8 text (byte 12)" in result.err


def test_a_huge_spec_is_refused_by_its_line_count_before_parsing(cli, tmp_path):
    spec = tmp_path / "huge.arch"
    spec.write_text("input 8x8x1\n" + "relu\n" * 199_000, encoding="utf-8")
    started = time.perf_counter()
    result = cli("lint", str(spec))
    assert time.perf_counter() - started < 1  # 2.9 s when it was parsed first
    assert result.code == 2 and f"{spec}:30001:1: error: the spec has 199,002 lines; at most 30,000" in result.err
    comments = tmp_path / "comments.arch"
    comments.write_text("input 8x8x1\n" + "# note\n" * 40_000 + "relu\n", encoding="utf-8")
    assert "at most 30,000 are allowed" in cli("summarize", str(comments)).err  # comments are lines too


def test_lint_fix_keeps_a_byte_order_mark_and_line_endings(cli, tmp_path):
    spec = tmp_path / "windows.arch"
    spec.write_bytes(b"\xef\xbb\xbfinput 32x32x3\r\nconv 8 3 padding=same bn relu\r\ngap\r\ndense 2 softmax\r\n")
    result = cli("lint", "--fix", "--unsafe-fixes", "--select", "CA302", str(spec))
    assert result.code == 0 and "Fixed" in result.out
    assert spec.read_bytes() == (
        b"\xef\xbb\xbfinput 32x32x3\r\nconv 8 3 padding=same bias=false bn relu\r\ngap\r\ndense 2 softmax\r\n"
    )
    plain = tmp_path / "plain.arch"
    plain.write_bytes(b"input 32x32x3\nconv 8 3 padding=same bn relu\ngap\ndense 2 softmax\n")
    cli("lint", "--fix", "--unsafe-fixes", "--select", "CA302", str(plain))
    assert Path(plain).read_bytes().startswith(b"input")  # no mark where there was none


def test_a_stdout_the_command_closed_is_no_fault(monkeypatch):
    # the language server closes its stdio when the editor sends `exit`; cnn-arch then exits as asked
    from cnn_arch.cli import app

    stream = io.TextIOWrapper(io.BytesIO())  # flushing it once closed raises, as a closed sys.stdout does

    def close_and_finish():
        stream.close()
        raise SystemExit(0)

    monkeypatch.setattr(app, "app", close_and_finish)
    monkeypatch.setattr("sys.stdout", stream)
    with pytest.raises(SystemExit) as exit:
        app.main()
    assert exit.value.code == 0
