"""The streaming path's up-front check, remembered: a folder whose files are unchanged (by content
hash) is not decoded again before the next streamed run; its bad-file report and fingerprint are
read back. Hashing every file is far quicker than decoding it (about 1 GB/s against a few thousand
images a second)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from archspec.train.data import folders
from archspec.train.data.images import Shape
from archspec.train.data.listing import FolderListing

FORMAT = 1


class CheckCache:
    """The remembered check of one folder, split and input shape; the files are hashed on creation."""

    def __init__(
        self,
        root: Path,
        listing: FolderListing,
        input_shape: Shape,
        *,
        val_split: float,
        seed: int,
        progress=None,
        test_split: float = 0.0,
    ) -> None:
        name = hashlib.sha256(f"{os.path.realpath(root)}:{input_shape}".encode()).hexdigest()[:32]
        self.path = folders.default_cache_dir() / f"stream-check-{name}.json"
        paths = [file.path for files in listing.files.values() for file in files]
        contents = folders._cache_key(listing, folders._content_digests(paths, progress), input_shape)
        # The split decides which images the fingerprint covers, in which order.
        self.key = hashlib.sha256(json.dumps([FORMAT, contents, val_split, seed, test_split]).encode()).hexdigest()

    def read(self) -> tuple[list[tuple[str, str]], str | None] | None:
        """(the files decoding found bad, the fingerprint of the usable ones or None when not known yet),
        or None when the folder has not been checked as it is now."""
        try:
            stored = json.loads(self.path.read_text(encoding="utf-8"))
            if stored.get("key") != self.key:
                return None
            return [(str(path), str(reason)) for path, reason in stored["bad"]], stored["fingerprint"]
        except (OSError, ValueError, KeyError, TypeError):
            return None  # none yet, or damaged: checked again, never trusted

    def write(self, bad: list[tuple[str, str]], fingerprint: str | None) -> None:
        """Atomically; a cache that cannot be written only costs the next run its check."""
        text = json.dumps({"key": self.key, "bad": bad, "fingerprint": fingerprint})
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.stem, suffix=".tmp")
        except OSError:
            return
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(text)
            os.replace(temporary, self.path)
        except OSError:
            pass
        finally:
            Path(temporary).unlink(missing_ok=True)
