"""`cnn-arch import`: Keras source read statically into specs with the counts Keras gives (the
reference numbers below were measured by Keras 3 building these files; test_keras_reference.py
measures them again), and what cannot be translated reported at its Python line and column."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from archspec.compile import compile_spec
from archspec.errors import SpecError
from archspec.interop.keras_import import import_keras, keras_models
from archspec.interop.readers import compile_imported

KERAS = Path(__file__).parent / "keras"

# (file, model variable, total, trainable, output shape): Keras 3.15 count_params() of the same code.
MODELS = [
    ("flatten_head.py", "model", 11_574_090, 11_573_898, (10,)),
    ("gap_head.py", "model", 66_602, 66_410, (10,)),
    ("cats_dogs.py", "flatten_dense", 1_937_321, 1_936_873, (1,)),
    ("cats_dogs.py", "flatten_dense_dropout", 1_947_421, 1_946_973, (1,)),
    ("cats_dogs.py", "global_pooling", 94_049, 93_601, (1,)),
    ("residual.py", "model", 173_770, 173_002, (10,)),
    ("everyday_python.py", "model", 31_482, 31_066, (10,)),
    ("subclassed.py", "model", 2_301, 2_253, (5,)),
    # a script and the package beside it (nets/): modules read through imports, Keras-2-era habits
    ("package_style/model.py", "model", 10_366, 10_270, (10,)),
]


def source(name: str) -> str:
    return (KERAS / name).read_text(encoding="utf-8")


def compile_python(text: str, name: str):
    return compile_imported(import_keras(text, name))


@pytest.mark.parametrize(("file", "model", "total", "trainable", "output"), MODELS)
def test_imported_counts_equal_keras(file, model, total, trainable, output):
    imported = import_keras(source(file), str(KERAS / file), model)  # its path: the modules beside it are read
    typed = compile_spec(imported.text, file)
    assert (typed.params, typed.trainable, typed.output_shape) == (total, trainable, output)


def test_no_keras_tensorflow_or_jax_is_imported():
    code = (
        "import sys; from archspec.interop.readers import compile_model_file; "
        f"compile_model_file({str(KERAS / 'residual.py')!r}); "
        "print(sorted({'keras', 'tensorflow', 'jax'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_each_spec_line_names_its_python_line():
    imported = import_keras(source("flatten_head.py"), "flatten_head.py")
    lines = imported.text.splitlines()
    assert lines[1].split("#")[0].strip() == "input 224x224x3"
    assert lines[2] == "conv 32 3 relu".ljust(40) + " # line 8: Conv2D"
    assert lines[-1].startswith("dense 10 softmax") and lines[-1].endswith("# line 20: Dense")
    assert imported.origins[len(lines)].line == 20  # the spec's last line maps back to Python line 20


def test_functional_residual_blocks_become_add_blocks():
    text = import_keras(source("residual.py"), "residual.py").text
    body = [line.split("#")[0].rstrip() for line in text.splitlines()[1:]]
    first = body.index("add:")
    assert body[first + 1 : first + 3] == ["    identity", "    branch:"]  # identity shortcut
    projection = body.index("add:", first + 1)
    assert body[projection + 1 : projection + 4] == [
        "    branch:",
        "        conv 64 1 stride=2 bias=false",
        "        bn",
    ]
    assert body[body.index("concat:") + 1 :][:3] == [
        "    conv 32 1 relu",
        "    conv 32 3 padding=same relu",
        "    identity",
    ]


def test_every_model_of_a_file_is_found_in_order():
    names = [m.name for m in keras_models(source("cats_dogs.py"), "cats_dogs.py").all()]
    assert names == ["flatten_dense", "flatten_dense_dropout", "global_pooling"]
    assert import_keras(source("cats_dogs.py"), "cats_dogs.py").name == "global_pooling"  # the last by default


def test_summary_rows_carry_python_lines():
    typed = compile_python(source("gap_head.py"), "gap_head.py")
    # input (line 7); each conv and its relu (9, 10) twice; pool (11), bn (12); gap, dropout, dense + softmax
    assert [n.span.line for n in typed.graph.nodes] == [7, 9, 9, 10, 10, 11, 12, 9, 9, 10, 10, 11, 12, 13, 14, 15, 15]


def test_keras_defaults_and_arguments(tmp_path):
    code = """
    from tensorflow.keras import layers, Sequential
    m = Sequential([
        layers.InputLayer(input_shape=(64, 64, 3)),
        layers.ZeroPadding2D(((0, 1), (0, 1))),
        layers.Conv2D(16, kernel_size=(3, 5), strides=(2, 1), dilation_rate=1, use_bias=False, kernel_initializer="he_normal"),
        layers.BatchNormalization(momentum=0.9, epsilon=1e-5),
        layers.LeakyReLU(),
        layers.DepthwiseConv2D(3, padding="SAME", depth_multiplier=2),
        layers.ReLU(max_value=6),
        layers.SeparableConv2D(32, 3, activation="swish"),
        layers.AveragePooling2D(3, strides=1),
        layers.GlobalMaxPooling2D(keepdims=True),
        layers.Flatten(),
        layers.Dense(5, activation=None),
        layers.Softmax(),
    ])
    """
    text = import_keras(textwrap.dedent(code), "m.py").text
    body = [line.split("#")[0].rstrip() for line in text.splitlines()[1:]]
    assert body == [
        "input 64x64x3",
        "zeropad 0x1x0x1",
        "conv 16 3x5 stride=2x1 bias=false",
        "bn momentum=0.9 epsilon=1e-05",
        "leaky_relu 0.3",  # Keras 3's default negative slope
        "dwconv 3 padding=same multiplier=2",
        "relu6",
        "sepconv 32 3 swish",
        "avgpool 3 stride=1",
        "gmp keepdims=true",
        "flatten",
        "dense 5",
        "softmax",
    ]


# The error catalogue: Keras code the importer refuses, the message, and its Python line and column.
ERRORS = [
    (
        "import keras\nm = keras.Sequential([keras.layers.LSTM(8)])",
        "`LSTM` is not a Keras layer the spec language has",
        2,
        23,
    ),
    ("import keras\nn = 8\nm = keras.Sequential([keras.layers.Dense(units=get())])", "`get` is not a value", 3, 48),
    (
        "import keras\nm = keras.Sequential([keras.layers.Dense(4, input_shape=(3,)), keras.layers.Dense(2, activation='swishy')])",
        'activation "swishy" has no spec equivalent',
        2,
        86,
    ),
    (
        "import keras\nm = keras.Sequential([keras.layers.Conv2D(8, 3, padding='causal', input_shape=(8, 8, 1))])",
        '`padding` must be "valid" or "same"',
        2,
        49,
    ),
    (
        "import keras\nm = keras.Sequential([keras.layers.Conv2D(8, 3, data_format='channels_first', input_shape=(8, 8, 1))])",
        "channels-last",
        2,
        49,
    ),
    (
        "import keras\nm = keras.Sequential([keras.layers.Dense(4, lora_rank=2, input_shape=(3,))])",
        "`lora_rank=2` has no spec equivalent",
        2,
        45,
    ),
    ("import keras\nm = keras.Sequential([keras.layers.Dense(4)])", "the Sequential model has no input shape", 2, 5),
    (
        "import keras\nm = keras.Sequential([keras.Input(shape=(None, None, 3)), keras.layers.Conv2D(4, 3)])",
        "the input shape is not fixed",
        2,
        35,
    ),
    (
        "import keras\nimport random\nm = keras.Sequential([keras.Input(shape=(8, 8, 1))])\nfor n in random.sample(range(9), 3):\n    m.add(keras.layers.Dense(n))",
        "`random` is a module static reading does not open",
        4,
        10,
    ),
    (
        "import keras\nm = keras.Sequential([keras.Input(shape=(8,))])\nwhile True:\n    m.add(keras.layers.Dense(4))",
        "this `while` loop runs more than 10,000 times",
        3,
        1,
    ),
    (
        "import keras\nx = keras.Input(shape=(8, 8, 3))\ny = keras.layers.Conv2D(4, 3)(x) * x\nm = keras.Model(x, y)",
        "`multiply` needs shapes that broadcast, got 6x6x4 (line 3) and 8x8x3 (line 2)",
        3,
        5,
    ),
    (
        "import keras\nx = keras.Input(shape=(8, 8, 3))\nm = keras.Model(x, keras.layers.MaxPooling2D(16)(x))",
        "maxpool 16 needs at least 16x16 input, got 8x8",
        3,
        20,
    ),
    (
        "import keras\nx = keras.Input(shape=(8,))\nd = keras.layers.Dense(8)\nm = keras.Model(x, d(d(x)))",
        "applied a second time here (shared weights)",
        4,
        20,
    ),
    ("import keras\ndef build(:\n    pass", "not valid Python", 2, 11),
    ("x = 1", "no Keras model found", 1, 1),
]


@pytest.mark.parametrize(("code", "message", "line", "column"), ERRORS)
def test_error_catalogue(code, message, line, column):
    with pytest.raises(SpecError) as caught:
        compile_python(code, "model.py")
    error = caught.value
    assert message in error.message
    assert (error.line, error.column) == (line, column)
    assert error.render().startswith(f"model.py:{line}:{column}: error: ")


def test_import_cli_writes_a_spec_that_summarizes_like_the_python(cli, tmp_path):
    out = tmp_path / "m.arch"
    result = cli("import", str(KERAS / "residual.py"), "-o", str(out))
    assert result.code == 0, result.err
    assert "Wrote" in result.out
    from_spec = cli("summarize", str(out)).out
    from_python = cli("summarize", str(KERAS / "residual.py")).out
    assert "Total params: 173,770" in from_spec and "Total params: 173,770" in from_python
    assert cli("import", str(KERAS / "residual.py"), "-o", str(out)).code == 2  # exists: needs --force


def test_lint_reports_at_python_lines(cli):
    result = cli("lint", str(KERAS / "flatten_head.py"), "--output-format", "concise")
    assert result.code == 1
    assert f"{KERAS / 'flatten_head.py'}:16:9: CA101" in result.out  # layers.Flatten() is on line 16


def test_lint_honours_noqa_on_the_python_line(cli, tmp_path):
    path = tmp_path / "head.py"
    path.write_text(source("flatten_head.py").replace("layers.Flatten(),", "layers.Flatten(),  # noqa: CA101,CA501"))
    result = cli("lint", str(path))
    assert result.code == 0, result.out
    assert cli("lint", str(path), "--fix").code == 2  # Python is not rewritten


def test_cli_errors_point_at_python(cli, tmp_path):
    path = tmp_path / "bad.py"
    path.write_text("import keras\nm = keras.Sequential([keras.layers.GRU(3)])\n")
    for command in ("import", "summarize", "lint"):
        result = cli(command, str(path))
        assert result.code == 2
        assert f"{path}:2:23: error: `GRU` is not a Keras layer" in result.err
        assert "Traceback" not in result.err


# --- everyday Python, and no traceback whatever the file holds --------------------------------------


def _dense_units(code: str) -> list[int]:
    """The `dense` widths of the model `code` builds (its last lines make it)."""
    typed = compile_python(textwrap.dedent(code), "model.py")
    return [n.attrs["units"] for n in typed.graph.nodes if n.kind == "dense"]


def test_shapes_are_read_off_tracked_tensors():
    code = """
    import keras
    from tensorflow.keras import backend as K
    x = keras.Input(shape=(8, 8, 6))
    y = keras.layers.Conv2D(12, 3)(x)
    a = keras.layers.Dense(K.int_shape(y)[-1])(y)
    b = keras.layers.Dense(keras.ops.shape(a)[1] * 2)(a)
    c = keras.layers.Dense(b.shape[-1] + b.shape.as_list()[2])(b)
    m = keras.Model(x, c)
    """
    assert _dense_units(code) == [12, 12, 18]  # 6x6x12 after the conv: widths 12, 6*2, 12+6


def test_conditions_on_values_the_reader_computes():
    code = """
    import keras
    from keras import backend, layers

    def head(x, input_tensor=None, classes=3, pooling="avg"):
        bn_axis = 3 if backend.image_data_format() == "channels_last" else 1
        x = layers.BatchNormalization(axis=bn_axis)(x)
        if input_tensor is None and pooling in ("avg", "max"):
            x = layers.GlobalAveragePooling2D()(x) if pooling == "avg" else layers.GlobalMaxPooling2D()(x)
        return layers.Dense(classes * 2 if classes > 2 else 1)(x)

    x = keras.Input((4, 4, 2))
    m = keras.Model(x, head(x))
    """
    assert _dense_units(code) == [6]


def test_a_long_expression_is_evaluated_without_recursion():
    terms = "+".join(["1"] * 2000)
    assert _dense_units(
        f"import keras\nn = {terms}\nm = keras.Sequential([keras.Input((4,)), keras.layers.Dense(n)])"
    ) == [2000]


def test_a_reader_gap_is_a_located_error(monkeypatch):
    from archspec.interop import keras_import

    def broken(self, node, env):
        raise KeyError("a gap")

    monkeypatch.setattr(keras_import._Importer, "_BinOp", broken)
    with pytest.raises(SpecError) as caught:
        compile_python(
            "import keras\nn = 2\nm = keras.Sequential([keras.Input((4,)), keras.layers.Dense(n * 2)])", "m.py"
        )
    assert (caught.value.line, caught.value.message) == (3, "cannot follow this statement (KeyError: 'a gap')")


# Files that once crashed the reader or could: each is a located error (or a model), never a traceback.
CRASH_CASES = [
    ("x = 1 // 0\n", "no Keras model found", 1),
    (
        "import keras\nn = 1 // 0\nm = keras.Sequential([keras.Input((4,)), keras.layers.Dense(n)])",
        "ZeroDivisionError",
        2,
    ),
    ("x = " + "+".join(["1"] * 40_000) + "\n", "cannot parse this file (RecursionError)", 1),
    ("x = " + "(" * 300 + "1" + ")" * 300 + "\n", "not valid Python: too many nested parentheses", 1),
    ("import keras\ndef f(n):\n    return f(n + 1)\nm = f(0)", "function calls nested more than", 3),
    (
        "import keras\nm = keras.Sequential([keras.Input((4,))])\nfor i in range(10**9):\n    m.add(keras.layers.Dense(4))",
        "a range of 1,000,000,000 items",
        3,
    ),
    ("import keras\nl = [0] * 10**9", "no Keras model found", 1),
    ("import keras\nx = 2 ** 10000\nm = keras.Sequential([keras.Input((x,))])", "an exponent of 10000", 2),
    ("import keras\nclass M(keras.Model):\n    def call(self, x):\n        return x\nm = M()", "input shape of `M`", 5),
    (
        "import keras\nm = keras.Sequential([keras.layers.Lambda(keras.ops.sort)])",
        "a `Lambda` layer is followed when it wraps a function of the script",
        2,
    ),
]


@pytest.mark.parametrize(("code", "message", "line"), CRASH_CASES)
def test_no_traceback_whatever_the_file_holds(cli, tmp_path, code, message, line):
    path = tmp_path / "model.py"
    path.write_text(code)
    result = cli("import", str(path))
    assert result.code == 2
    assert "Traceback" not in result.err
    assert result.err.startswith(f"{path}:{line}:") and message in result.err, result.err


def test_an_error_in_a_module_the_script_imports_is_shown_in_that_module(tmp_path):
    (tmp_path / "blocks.py").write_text("import keras\n\n\ndef head(x):\n    return keras.layers.LSTM(4)(x)\n")
    script = tmp_path / "model.py"
    script.write_text(
        "import keras\nfrom blocks import head\n\nx = keras.Input((8, 8, 3))\nm = keras.Model(x, head(x))\n"
    )
    with pytest.raises(SpecError) as caught:
        compile_imported(import_keras(script.read_text(), str(script)))
    error = caught.value
    assert "`LSTM` is not a Keras layer" in error.message
    assert (error.source.name, error.span.line) == (str(tmp_path / "blocks.py"), 5)
    assert error.notes[0].message == f"reached from line 5 of {script}"


def test_installed_packages_are_not_opened_and_the_error_says_so(tmp_path):
    script = tmp_path / "model.py"
    script.write_text("from segmentation_models import Unet\n\nmodel = Unet('resnet18')\n")
    with pytest.raises(SpecError) as caught:
        compile_imported(import_keras(script.read_text(), str(script)))
    assert "`Unet` comes from `segmentation_models`, a module static reading does not open" in caught.value.message
    assert caught.value.span.line == 3 and "--run" in caught.value.hint
