"""Which way a run's data is read: held in memory, or streamed from disk when its decoded images
exceed the memory budget (`--data-memory`). `train` and `evaluate` choose alike."""

from __future__ import annotations

import sys
from pathlib import Path

from archspec.train import distributed, memory
from archspec.train.config import TrainConfig


def load_data(config: TrainConfig, typed, progress=None):
    """The dataset in memory, or streamed when its decoded images exceed the memory budget (training,
    and `evaluate` on a run's config); and the run header's line saying which."""
    from archspec.train.data import hub, load_dataset, stream

    budget, given = _data_budget(config, typed)
    line = None
    if config.data.startswith(hub.HUB_PREFIX):
        splits = hub.open_hub(
            config.data, config.input_shape, val_split=config.val_split, test_split=config.test_split, seed=config.seed
        )
        choice = stream.choose(sum(map(len, splits.sources.values())), config.input_shape, budget, given=given)
        if distributed.all_agree(choice.stream):
            dataset = stream.stream_hub(splits, skip_bad_files=config.skip_bad_files, progress=progress)
            return dataset, _streaming_line(choice)
        line = choice.line
    listing = stream.folder_listing(config.data, config.input_shape)
    if listing is not None:
        choice = stream.choose(listing.file_count, config.input_shape, budget, given=given)
        # Every process must read its data the same way (hosts differ in free memory).
        if distributed.all_agree(choice.stream):
            dataset = stream.stream_folder(
                config.data,
                listing,
                config.input_shape,
                val_split=config.val_split,
                test_split=config.test_split,
                seed=config.seed,
                skip_bad_files=config.skip_bad_files,
                progress=progress,
            )
            return dataset, _streaming_line(choice)
    npz_path = Path(config.data).expanduser()
    streamable = listing is not None or (npz_path.suffix.lower() == ".npz" and npz_path.is_file())
    if listing is None and streamable:
        from archspec.train.data import npz, npz_stream

        count = sum(
            header.shape[0]
            for name, header in npz._read_npz_headers(config.data, npz_path).items()
            if name.startswith("x_")
        )
        choice = stream.choose(count, config.input_shape, budget, given=given)
        if distributed.all_agree(choice.stream):
            dataset = npz_stream.stream_npz(
                config.data,
                npz_path,
                config.input_shape,
                val_split=config.val_split,
                test_split=config.test_split,
                seed=config.seed,
            )
            return dataset, _streaming_line(choice)
    dataset = load_dataset(
        config.data,
        config.input_shape,
        val_split=config.val_split,
        test_split=config.test_split,
        seed=config.seed,
        skip_bad_files=config.skip_bad_files,
        progress=progress,
    )
    if line is None:
        count = sum(len(y) for y in (dataset.y_train, dataset.y_val, dataset.y_test) if y is not None)
        line = stream.choose(count, config.input_shape, budget, given=given, streamable=streamable).line
    return dataset, line


def _streaming_line(choice) -> str:
    return choice.line if choice.stream else "data: streaming from disk (another process must)"


def _data_budget(config: TrainConfig, typed) -> tuple[int, bool]:
    """(bytes the decoded images may take in memory, whether --data-memory gave it): by default half
    the host's available memory (the images are held on the host while they go to the device), and
    no more than the device has left beside the model's training memory. On a CPU each JAX device
    holds a copy of the images in host memory: the host's half is shared by them."""
    if config.data_memory is not None:
        return config.data_memory, True
    from archspec.train.data import available_host_memory

    host = available_host_memory()
    limit, _ = memory.device_memory()
    model = memory.training_bytes(typed, config.batch_size, config.precision)
    host_share = host // 2 // memory.host_copies() if host else None
    known = [amount for amount in (host_share, limit - model if limit else None) if amount is not None]
    return (max(0, min(known)) if known else sys.maxsize), False
