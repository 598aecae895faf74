"""`--precision bf16`: bfloat16 compute with float32 master weights, optimizer state, BatchNorm
statistics (precise BN's too) and loss; the memory pre-check counts bf16 activations; a bf16 run
learns digits as well as fp32 and saves float32 checkpoints."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from archspec.compile import compile_spec
from archspec.errors import UserError
from archspec.templates import catalog
from archspec.train import distributed, memory, steps
from archspec.train.config import TrainConfig
from archspec.train.outputs import Task
from tests.conftest import one_cpu_device
from tests.train.conftest import TINY_SPEC


def _floats(tree) -> set[str]:
    return {str(leaf.dtype) for leaf in jax.tree.leaves(tree) if jnp.issubdtype(leaf.dtype, jnp.floating)}


# These three have every kind of layer between them (avgpool, flatten, normalize, zeropad, depthwise and
# squeeze-excite); the others take seconds each to build even as shapes.
QUICK = ("gap-head", "lenet5", "efficientnet-b0")


@pytest.mark.parametrize(
    "name", [e.name if e.name in QUICK else pytest.param(e.name, marks=pytest.mark.slow) for e in catalog()]
)
@pytest.mark.slow  # compiles Flax models: seconds each
def test_every_template_computes_in_bf16_and_keeps_float32_state(name):
    """Shapes only (no weights allocated): every layer's output is bfloat16, every parameter and
    statistic float32, before and after a training-mode forward pass updates the BatchNorm averages."""
    from cnn_arch.cli.common import compile_target

    typed = compile_target(name, None)
    model = jax.eval_shape(functools.partial(steps.init_model, typed, seed=0, dtype=jnp.bfloat16))
    graphdef = steps.model_graphdef(typed, dtype=jnp.bfloat16)
    assert _floats(model) == {"float32"}

    def forward(model, x):
        merged = nnx.merge(graphdef, model.params, model.model_state)
        values = merged.trace(x, train=True, logits=True)
        return values, nnx.to_pure_dict(nnx.state(merged, nnx.BatchStat))

    values, statistics = jax.eval_shape(forward, model, jax.ShapeDtypeStruct((2, *typed.input_shape), jnp.float32))
    in_float32 = [
        f"{node.kind} (line {node.line})"
        for node, value in zip(typed.graph.nodes, values)
        if value.dtype != jnp.bfloat16
    ]
    assert in_float32 == []
    assert _floats(statistics) <= {"float32"}


def _tiny(precision: str):
    typed = compile_spec(TINY_SPEC, "tiny", None)
    dtype = jnp.bfloat16 if precision == "bf16" else None
    return typed, steps.model_graphdef(typed, dtype=dtype), steps.init_model(typed, seed=0, dtype=dtype)


def _images(count: int = 64):
    from tests.train.conftest import make_images

    images, labels = make_images(count, seed=3)
    return jnp.asarray(images[..., None]), jnp.asarray(labels.astype(np.int32))


@pytest.mark.slow  # compiles Flax models: seconds each
def test_bf16_train_step_keeps_float32_weights_optimizer_state_and_loss():
    typed, graphdef, model = _tiny("bf16")
    mesh = distributed.make_mesh(jax.devices()[:1])
    config = TrainConfig(spec="tiny", spec_text=TINY_SPEC, input_shape=typed.input_shape, precision="bf16")
    tx = steps.make_optimizer(config, steps.make_schedule(config, 4))
    task = Task("softmax", 3, 3)
    state = steps.init_train_state(model, tx, seed=0)
    images, labels = _images()
    order = steps.epoch_order(state.key, jnp.int32(0), num_examples=64, steps=4, batch_size=16)
    step = jax.jit(
        functools.partial(
            steps.train_step,
            graphdef=graphdef,
            tx=tx,
            task=task,
            steps_per_epoch=4,
            augment=(),
            batch_sharding=distributed.batch_sharded(mesh),
        )
    )
    totals = {"loss": jnp.zeros(()), "correct": jnp.zeros(()), "count": jnp.zeros(())}
    before = jax.tree.map(np.asarray, state.params)
    for _ in range(4):
        state, totals = step(state, totals, images, labels, order)
    assert _floats(state.params) == {"float32"}
    assert _floats(state.opt_state) == {"float32"}  # Adam's moments
    assert _floats(state.model_state) == {"float32"}  # BatchNorm moving averages
    assert totals["loss"].dtype == jnp.float32 and np.isfinite(float(totals["loss"]))
    # The updates are kept at float32 resolution: the first steps' changes (warm-up: a tiny learning
    # rate) are mostly below bfloat16's spacing around the weights, so bf16 master weights would lose them.
    kernel = np.asarray(state.params["layers"]["conv_1"]["kernel"])
    change = kernel - before["layers"]["conv_1"]["kernel"]
    spacing = np.abs(before["layers"]["conv_1"]["kernel"]) * 2.0**-8
    assert np.any((change != 0) & (np.abs(change) < spacing))


def test_precise_bn_statistics_are_float32_and_match_fp32():
    images, _ = _images()
    mesh = distributed.make_mesh(jax.devices()[:1])
    batches = jnp.asarray(steps.precise_bn_order(0, num_examples=64, batch_size=16))
    found = {}
    for precision in ("fp32", "bf16"):
        _, graphdef, model = _tiny(precision)
        recompute = jax.jit(
            functools.partial(steps.batch_statistics, graphdef=graphdef, batch_sharding=distributed.batch_sharded(mesh))
        )
        found[precision] = recompute(model, images, batches).model_state
    bn_fp32, bn_bf16 = found["fp32"]["layers"]["bn_3"], found["bf16"]["layers"]["bn_3"]
    assert _floats(bn_bf16) == {"float32"}
    # the same statistics as in fp32, to bfloat16's precision of the convolution's outputs
    np.testing.assert_allclose(bn_bf16["mean"], bn_fp32["mean"], rtol=2e-2, atol=1e-2)
    np.testing.assert_allclose(bn_bf16["var"], bn_fp32["var"], rtol=3e-2, atol=1e-2)
    assert not np.allclose(bn_fp32["mean"], 0)  # recomputed, not the initial zeros


def test_memory_check_counts_bf16_activations(monkeypatch):
    """A batch whose fp32 activations do not fit the device fits in bf16; the refusal suggests bf16."""
    from cnn_arch.cli.common import compile_target

    typed = compile_target("gap-head", None)

    class Data:
        x_train, x_val, x_test = np.zeros((10, 224, 224, 3), np.uint8), None, None

    def config(precision):
        return TrainConfig(
            spec="gap-head", spec_text="", input_shape=typed.input_shape, batch_size=64, precision=precision
        )

    fp32, bf16 = (memory.training_bytes(typed, 64, precision) for precision in ("fp32", "bf16"))
    assert fp32 - bf16 == typed.activation_values() * 64 * 2 * memory.BACKWARD_FACTOR
    limit = (fp32 + bf16) // 2 + Data.x_train.nbytes
    monkeypatch.setattr(memory, "device_memory", lambda: (limit, "the test device's"))
    with pytest.raises(UserError) as refused:
        memory.check_training_fits(typed, Data, config("fp32"))
    assert "fp32 activations" in str(refused.value)
    assert "--precision bf16" in refused.value.render()
    memory.check_training_fits(typed, Data, config("bf16"))


def _saved_dtypes(run_dir) -> dict[str, set[str]]:
    """The dtypes of the arrays in the run's latest checkpoint as stored, read without a target."""
    import orbax.checkpoint as ocp

    folder = max((run_dir / "checkpoints").iterdir(), key=lambda p: int(p.name))
    with ocp.StandardCheckpointer() as checkpointer:
        return {item: _floats(checkpointer.restore(folder / item)) for item in ("model", "train")}


@pytest.mark.slow  # two runs of 4 epochs (about 45 s)
def test_bf16_learns_digits_within_two_points_of_fp32(tmp_path, capsys, monkeypatch):
    from archspec.train.inference import load_run
    from archspec.train.loop import train_and_evaluate
    from cnn_arch.cli.common import read_target
    from cnn_arch.cli.progress import RichReporter

    monkeypatch.setenv("COLUMNS", "200")

    name, text = read_target("gap-head")  # BatchNorm twice: precise BN runs in both
    accuracy = {}
    for precision in ("fp32", "bf16"):
        config = TrainConfig(
            spec=name, spec_text=text, input_shape=(16, 16, 1), epochs=4, batch_size=64, precision=precision
        )
        capsys.readouterr()
        result = train_and_evaluate(config, tmp_path / precision, reporter=RichReporter())
        accuracy[precision] = result.results["test"]["accuracy"]
        # The run's header says when it computes in bf16.
        assert (f"{one_cpu_device()} in bf16 (float32 weights):" in capsys.readouterr().out) == (precision == "bf16")
    assert accuracy["fp32"] > 0.9
    assert abs(accuracy["bf16"] - accuracy["fp32"]) <= 0.02, accuracy
    run = load_run(tmp_path / "bf16", "last")
    assert _floats(run.model) == {"float32"}
    assert _saved_dtypes(tmp_path / "bf16") == {"model": {"float32"}, "train": {"float32"}}
