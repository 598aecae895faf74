"""Training throughput of `cnn-arch train`'s loop against a bare `jax.jit` step and Keras 3 `fit`.

    python benchmarks/bench_train_loop.py                      # gap-head at 32x32x1 on digits
    python benchmarks/bench_train_loop.py --keras-python /tmp/keras-venv/bin/python

The same model (built from one spec), data (the digits training images, no validation split),
batch size and optimizer (AdamW) for all three, each in a fresh process. Every contender trains
`--epochs` epochs; the first (compilation) is left out and images/s is measured over the others:

- `ours`: `archspec.train.loop.train_and_evaluate`, everything included: on-device batch gathering
  and normalization, metric sums, a checkpoint and a metrics.jsonl row per epoch.
- `bare`: one jitted, donated step on pre-normalized float batches gathered once per epoch; no
  metrics, no checkpoints. The upper bound for any loop over this step.
- `keras`: the same layers as a `keras.Sequential` with the JAX backend, `model.fit` with defaults
  (jit-compiled, one step per call). Keras is not a dependency of cnn-arch: install it in a separate
  environment that sees this one, e.g.

      python -m venv /tmp/keras-venv
      echo "$(python -c 'import site; print(site.getsitepackages()[0])')" \\
          > /tmp/keras-venv/lib/python3.11/site-packages/cnn-arch-env.pth
      /tmp/keras-venv/bin/pip install keras

Targets (DESIGN.md): ours >= 0.95x bare, and >= 1.0x Keras.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CONTENDERS = ("ours", "bare", "keras")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spec", default="gap-head", help="spec file or template (default: gap-head)")
    parser.add_argument("--input", default="32x32x1", help="input HxWxC (default: 32x32x1)")
    parser.add_argument("--data", default="digits")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=8, help="epochs per contender, the first not timed")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--repeats", type=int, default=1, help="runs per contender; the best is kept")
    parser.add_argument(
        "--keras-python", default=sys.executable, help="a Python that can import keras and cnn-arch (default: this one)"
    )
    parser.add_argument("--contender", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.contender:
        print(json.dumps(RUNNERS[args.contender](args)))
        return

    results: dict[str, float] = {}
    for repeat in range(args.repeats):
        for name in CONTENDERS:
            python = args.keras_python if name == "keras" else sys.executable
            report = _run_contender(python, name)
            if report is None:
                continue
            results[name] = max(results.get(name, 0.0), report["images_per_second"])
            extra = (
                f" (training phase only: {report['training_images_per_second']:,.0f})"
                if "training_images_per_second" in report
                else ""
            )
            print(f"[{repeat + 1}] {name:<6} {report['images_per_second']:>8,.0f} images/s{extra}", flush=True)
    print()
    print(
        f"{args.spec} at {args.input}, {args.data}, batch {args.batch_size}, {args.epochs - 1} timed epochs "
        f"(best of {args.repeats})"
    )
    for name, value in results.items():
        ratios = "  ".join(f"{value / results[other]:.2f}x {other}" for other in results if other != name)
        print(f"  {name:<6} {value:>8,.0f} images/s   {ratios}")


def _run_contender(python: str, name: str) -> dict | None:
    command = [python, __file__, "--contender", name, *sys.argv[1:]]
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        print(f"{name}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- shared setup -------------------------------------------------------------------------------------


def _problem(args):
    """(typed graph, dataset, config) shared by every contender."""
    from archspec.train.config import TrainConfig
    from archspec.train.data import load_dataset
    from cnn_arch.cli.common import compile_target, read_target

    name, text = read_target(args.spec)
    typed = compile_target(args.spec, args.input)
    config = TrainConfig(
        spec=name,
        spec_text=text,
        input_shape=typed.input_shape,
        data=args.data,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        val_split=0.0,
    )
    dataset = load_dataset(args.data, typed.input_shape, val_split=0.0, seed=0)
    return typed, dataset, config


def _timed_rate(epoch_ends: list[float], images_per_epoch: int) -> float:
    """Images per second between the end of the first epoch and the end of the last."""
    return images_per_epoch * (len(epoch_ends) - 1) / (epoch_ends[-1] - epoch_ends[0])


# --- contenders ----------------------------------------------------------------------------------------


def run_ours(args) -> dict:
    from archspec.train import run
    from archspec.train.loop import Reporter, train_and_evaluate

    _, dataset, config = _problem(args)

    class Clock(Reporter):
        def __init__(self) -> None:
            self.epoch_ends: list[float] = []

        def epoch_end(self, row) -> None:
            self.epoch_ends.append(time.perf_counter())

    clock = Clock()
    with tempfile.TemporaryDirectory() as folder:
        train_and_evaluate(config, f"{folder}/run", reporter=clock)
        rows = run.read_metrics(f"{folder}/run")
    steps = len(dataset.y_train) // args.batch_size
    training = sum(steps * args.batch_size for _ in rows[1:]) / sum(row["seconds"] for row in rows[1:])
    return {
        "images_per_second": _timed_rate(clock.epoch_ends, steps * args.batch_size),
        "training_images_per_second": training,
    }


def run_bare(args) -> dict:
    import functools

    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    from flax import nnx

    from archspec.flax_model import build_model
    from archspec.train.outputs import make_task
    from archspec.train.steps import make_optimizer, make_schedule

    typed, dataset, config = _problem(args)
    steps = len(dataset.y_train) // args.batch_size
    task = make_task(typed, dataset)
    tx = make_optimizer(config, make_schedule(config, steps))
    graphdef, params, model_state = nnx.split(build_model(typed, seed=0), nnx.Param, ...)
    params, model_state = nnx.to_pure_dict(params), nnx.to_pure_dict(model_state)
    opt_state = tx.init(params)

    @functools.partial(jax.jit, donate_argnums=(0, 1, 2))
    def step(params, model_state, opt_state, x, y):
        def loss_fn(params):
            model = nnx.merge(graphdef, params, model_state)
            loss = task.loss(model(x, train=True, logits=True), y).mean()
            return loss, nnx.to_pure_dict(nnx.split(model, nnx.Param, ...)[2])

        (loss, model_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), model_state, opt_state, loss

    @jax.jit
    def batches(images, labels, order):
        x = (images[order].astype(jnp.float32) / 255).reshape(steps, args.batch_size, *images.shape[1:])
        y = labels[order].reshape(steps, args.batch_size)
        return tuple(x), tuple(y)

    images, labels = jnp.asarray(dataset.x_train), jnp.asarray(dataset.y_train)
    rng = np.random.default_rng(0)
    epoch_ends = []
    for _ in range(args.epochs):
        order = jnp.asarray(rng.permutation(len(dataset.y_train))[: steps * args.batch_size])
        xs, ys = batches(images, labels, order)
        for x, y in zip(xs, ys):
            params, model_state, opt_state, loss = step(params, model_state, opt_state, x, y)
        loss.block_until_ready()
        epoch_ends.append(time.perf_counter())
    return {"images_per_second": _timed_rate(epoch_ends, steps * args.batch_size)}


def run_keras(args) -> dict:
    import keras

    typed, dataset, config = _problem(args)
    model = keras_model(typed)
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=args.lr, weight_decay=config.weight_decay),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )

    class Clock(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.epoch_ends: list[float] = []

        def on_epoch_end(self, epoch, logs=None) -> None:
            self.epoch_ends.append(time.perf_counter())

    clock = Clock()
    steps = len(dataset.y_train) // args.batch_size
    x = dataset.x_train[: steps * args.batch_size].astype("float32") / 255  # Keras normalizes on the host
    y = dataset.y_train[: steps * args.batch_size]
    model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, shuffle=True, verbose=0, callbacks=[clock])
    return {"images_per_second": _timed_rate(clock.epoch_ends, steps * args.batch_size), "keras": keras.__version__}


def keras_model(typed):
    """The spec's layers as a keras.Sequential (sequential specs of the common layer kinds)."""
    import keras
    from keras import layers

    stack = [keras.Input(typed.input_shape)]
    for node in typed.graph.nodes[1:]:
        attrs = node.attrs
        if node.kind == "conv":
            if attrs["groups"] != 1:
                raise SystemExit("keras_model: grouped convolutions are not translated")
            stack.append(
                layers.Conv2D(
                    attrs["filters"],
                    attrs["kernel"],
                    strides=attrs["stride"],
                    padding=attrs["padding"],
                    dilation_rate=attrs["dilation"],
                    use_bias=attrs["bias"],
                )
            )
        elif node.kind in ("maxpool", "avgpool"):
            pool = layers.MaxPooling2D if node.kind == "maxpool" else layers.AveragePooling2D
            stack.append(pool(attrs["size"], strides=attrs["stride"], padding=attrs["padding"]))
        elif node.kind == "bn":
            stack.append(
                layers.BatchNormalization(
                    momentum=attrs["momentum"], epsilon=attrs["epsilon"], center=attrs["center"], scale=attrs["scale"]
                )
            )
        elif node.kind == "gap":
            stack.append(layers.GlobalAveragePooling2D())
        elif node.kind == "flatten":
            stack.append(layers.Flatten())
        elif node.kind == "dropout":
            stack.append(layers.Dropout(attrs["rate"]))
        elif node.kind == "dense":
            stack.append(layers.Dense(attrs["units"], use_bias=attrs["bias"]))
        elif len(node.inputs) == 1 and not attrs:
            stack.append(layers.Activation(node.kind))
        else:
            raise SystemExit(f"keras_model: `{node.kind}` is not translated")
    return keras.Sequential(stack)


RUNNERS = {"ours": run_ours, "bare": run_bare, "keras": run_keras}

if __name__ == "__main__":
    main()
