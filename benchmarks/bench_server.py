"""Language-server latency on ResNet-50 (DESIGN target: a change re-checked and its diagnostics
published in <= 100 ms), measured through the real server over stdio with pygls' LSP client.

Opens the `resnet50` template (178 layers, 16 bottleneck calls) in `cnn-arch server`, then types
into it: each change edits the repeat count of stage 4 (`bottleneck 256 x5` → x4, x6, ...), as one
incremental change, and the clock runs from sending `didChange` until the `publishDiagnostics` of
that version arrives. After each, the inlay hints of the whole file are requested too (what an editor
asks next). Prints min / median / p90 / max and exits non-zero when the median misses the target.

    python benchmarks/bench_server.py [--changes 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from archspec import templates

TARGET_S = 0.100
STAGE = "bottleneck 256 x5"


async def run(changes: int) -> tuple[float, list[float], list[float]]:
    text = templates.path("resnet50").read_text(encoding="utf-8")
    line = text.split("\n").index(next(x for x in text.split("\n") if x.startswith(STAGE)))
    column = len(STAGE) - 1  # the digit of `x5`
    client = LanguageClient("bench", "1")
    published: dict[int, asyncio.Future] = {}

    @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def _published(params: types.PublishDiagnosticsParams) -> None:
        waiter = published.get(params.version)
        if waiter is not None and not waiter.done():
            waiter.set_result(time.perf_counter())

    started = time.perf_counter()
    await client.start_io(sys.executable, "-m", "cnn_arch", "server")
    with tempfile.TemporaryDirectory() as folder:
        uri = (Path(folder) / "resnet50.arch").as_uri()
        await client.initialize_async(types.InitializeParams(capabilities=types.ClientCapabilities()))
        startup = time.perf_counter() - started
        client.initialized(types.InitializedParams())
        loop = asyncio.get_running_loop()
        published[1] = loop.create_future()
        client.text_document_did_open(types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "cnn-arch", 1, text)))
        await asyncio.wait_for(published[1], 60)
        whole = types.Range(types.Position(0, 0), types.Position(len(text.split("\n")), 0))
        await client.text_document_inlay_hint_async(types.InlayHintParams(types.TextDocumentIdentifier(uri), whole))

        diagnostics, hints = [], []
        for version in range(2, changes + 2):
            digit = "456"[version % 3]
            change = types.TextDocumentContentChangePartial(
                range=types.Range(types.Position(line, column), types.Position(line, column + 1)), text=digit
            )
            published[version] = loop.create_future()
            start = time.perf_counter()
            client.text_document_did_change(
                types.DidChangeTextDocumentParams(types.VersionedTextDocumentIdentifier(version, uri), [change])
            )
            arrived = await asyncio.wait_for(published[version], 60)
            diagnostics.append(arrived - start)
            await client.text_document_inlay_hint_async(types.InlayHintParams(types.TextDocumentIdentifier(uri), whole))
            hints.append(time.perf_counter() - start)
        await client.shutdown_async(None)
        client.exit(None)
        await client.stop()
    return startup, diagnostics, hints


def describe(name: str, times: list[float]) -> str:
    ms = sorted(t * 1000 for t in times)
    p90 = ms[int(0.9 * (len(ms) - 1))]
    return f"{name:50} {ms[0]:6.1f} {statistics.median(ms):7.1f} {p90:6.1f} {ms[-1]:6.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=50)
    args = parser.parse_args()
    startup, diagnostics, hints = asyncio.run(run(args.changes))
    print(f"start-up (process start until the initialize reply): {startup * 1000:.0f} ms")
    print(f"{'ResNet-50, ' + str(args.changes) + ' changes (ms)':50} {'min':>6} {'median':>7} {'p90':>6} {'max':>6}")
    print(describe("change → diagnostics published", diagnostics))
    print(describe("change → diagnostics + inlay hints (178 layers)", hints))
    median = statistics.median(diagnostics)
    print(
        f"target: median change → diagnostics <= {TARGET_S * 1000:.0f} ms: {'met' if median <= TARGET_S else 'MISSED'}"
    )
    return 0 if median <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
