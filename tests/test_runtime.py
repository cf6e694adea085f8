"""The one runtime set-up (training/runtime.py) and the one definition of its flags."""

import keras
import pytest
import tensorflow as tf
from absl import flags

from electra_tf import run_finetuning, run_pretraining
from electra_tf.training.pretrain import RunOptions
from electra_tf.training.runtime import (RUNTIME_FLAGS, Runtime, define_runtime_flags,
                                         runtime_options, scale_loss)
from electra_tf.training import strategy as strategy_module
from electra_tf.training.strategy import STRATEGIES, StrategyError, default_precision


@pytest.fixture(autouse=True)
def float32_policy_afterwards():
    yield
    keras.mixed_precision.set_global_policy("float32")


def _dense(strategy):
    """``{original name: variable}`` of one dense layer (what create_optimizer takes)."""
    with strategy.scope():
        layer = keras.layers.Dense(2)
        layer.build((None, 3))
    return {"dense/kernel": layer.kernel, "dense/bias": layer.bias}


def test_float16_sets_the_policy_and_wraps_the_optimizer_in_loss_scaling():
    runtime = Runtime(mixed_precision="float16")
    assert keras.mixed_precision.global_policy().name == "mixed_float16"
    base, optimizer = runtime.create_optimizer(
        _dense(runtime.strategy), learning_rate=1e-3, num_train_steps=10, num_warmup_steps=0)
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    assert optimizer.inner_optimizer is base
    assert not isinstance(base, keras.optimizers.LossScaleOptimizer)
    scale = float(optimizer.dynamic_scale.numpy())
    assert scale > 1
    assert float(scale_loss(optimizer, tf.constant(3.0))) == pytest.approx(3.0 * scale)


def test_float32_and_bfloat16_apply_updates_with_the_base_optimizer_itself():
    for precision, policy in ((None, "float32"), ("bfloat16", "mixed_bfloat16")):
        runtime = Runtime(mixed_precision=precision)
        assert keras.mixed_precision.global_policy().name == policy
        base, optimizer = runtime.create_optimizer(
            _dense(runtime.strategy), learning_rate=1e-3, num_train_steps=10, num_warmup_steps=0,
            optimizer="lamb")
        assert optimizer is base and type(base).__name__ == "Lamb"
        assert float(scale_loss(optimizer, tf.constant(3.0))) == 3.0


def test_single_process_is_the_chief_writing_in_model_dir_without_xla_on_cpu(tmp_path):
    runtime = Runtime(model_dir=str(tmp_path))
    assert runtime.chief and runtime.replicas == 1
    assert runtime.write_dir == str(tmp_path)
    assert isinstance(runtime.strategy, tf.distribute.OneDeviceStrategy)
    assert runtime.jit_compile is bool(tf.config.list_logical_devices("GPU"))
    assert Runtime(jit_compile=True).jit_compile is True
    assert Runtime().write_dir is None


def test_xla_defaults_on_for_one_cpu_replica_in_half_precision_only():
    try:
        gpu = bool(tf.config.list_logical_devices("GPU"))
        assert Runtime(mixed_precision="bfloat16").jit_compile is True
        assert Runtime(mixed_precision="float16").jit_compile is True
        assert Runtime(mixed_precision="float32").jit_compile is gpu
        assert Runtime(mixed_precision="bfloat16", jit_compile=False).jit_compile is False
        # Several replicas on logical CPU devices: XLA fails there, so never by default.
        mirrored = Runtime(strategy="mirrored", mixed_precision="bfloat16")
        assert mirrored.jit_compile is (gpu or mirrored.replicas == 1)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_the_optimizer_is_built_under_the_runtime_strategy():
    runtime = Runtime(strategy="mirrored")
    base, _ = runtime.create_optimizer(
        _dense(runtime.strategy), learning_rate=1e-3, num_train_steps=10, num_warmup_steps=0)
    assert base.iterations.value._distribute_strategy is runtime.strategy


def test_from_options_reads_the_runtime_fields_of_run_options(tmp_path):
    options = RunOptions(model_dir=str(tmp_path), pretrain_tfrecords="", jit_compile=True,
                         mixed_precision="bfloat16")
    runtime = Runtime.from_options(options, model_dir=options.model_dir)
    assert runtime.jit_compile is True and runtime.mixed_precision == "bfloat16"
    assert runtime.write_dir == str(tmp_path)
    with pytest.raises(StrategyError, match="unknown --strategy 'nope'"):
        Runtime(strategy="nope")


def test_printer_speaks_on_the_chief_unless_quiet(capsys):
    runtime = Runtime()
    runtime.printer()("hello")
    runtime.printer(quiet=True)("hidden")
    captured = capsys.readouterr()
    assert captured.err == "hello\n" and captured.out == ""


def test_runtime_flags_parse_into_runtime_options():
    flag_values = flags.FlagValues()
    define_runtime_flags(flag_values)
    flag_values(["prog", "--strategy=mirrored", "--nojit_compile",
                 "--mixed_precision=bfloat16", "--tpu=node-1"])
    assert runtime_options(flag_values) == {"strategy": "mirrored", "tpu": "node-1",
                                            "jit_compile": False,
                                            "mixed_precision": "bfloat16"}
    assert list(flag_values["strategy"].parser.enum_values) == list(STRATEGIES)
    defaults = flags.FlagValues()
    define_runtime_flags(defaults)
    defaults(["prog"])
    assert runtime_options(defaults) == {"strategy": "default", "tpu": None,
                                         "jit_compile": None, "mixed_precision": "auto"}
    with pytest.raises(flags.Error):
        defaults(["prog", "--strategy=gpu"])


def test_both_commands_take_the_same_runtime_flags():
    defined = []
    for module in (run_pretraining, run_finetuning):
        flag_values = flags.FlagValues()
        module.define_flags(flag_values)
        defined.append({name: (flag_values[name].help, flag_values[name].default,
                               getattr(flag_values[name].parser, "enum_values", None))
                        for name in RUNTIME_FLAGS})
    assert defined[0] == defined[1]
    assert defined[0]["strategy"][2] == list(STRATEGIES)  # not a hand-written copy


def _fake_gpus(monkeypatch, capabilities):
    """Makes the process look as if it had GPUs of these compute capabilities."""
    devices = [tf.config.PhysicalDevice(f"/physical_device:GPU:{i}", "GPU")
               for i in range(len(capabilities))]
    details = dict(zip((d.name for d in devices), capabilities))
    monkeypatch.setattr(strategy_module.tf.config, "list_physical_devices",
                        lambda kind=None: devices if kind == "GPU" else [])
    monkeypatch.setattr(strategy_module.tf.config.experimental, "get_device_details",
                        lambda device: ({"compute_capability": details[device.name]}
                                        if details[device.name] else {}))


@pytest.mark.parametrize("capabilities, expected", [
    ([], None),                      # CPU: float32 (bfloat16 measured slower here)
    ([(7, 0)], None),                # V100: no bfloat16 tensor cores
    ([(8, 0)], "bfloat16"),          # A100
    ([(9, 0), (8, 6)], "bfloat16"),  # every GPU has them
    ([(9, 0), (7, 5)], None),        # one does not: the slowest decides
    ([None], None),                  # capability unknown: do not assume
])
def test_default_precision_follows_the_devices(monkeypatch, capabilities, expected):
    _fake_gpus(monkeypatch, capabilities)
    precision, reason = default_precision("default")
    assert precision == expected
    assert ("GPU" in reason) == bool(capabilities)


def test_tpu_defaults_to_bfloat16_and_auto_resolves_in_the_runtime(monkeypatch):
    assert default_precision("tpu")[0] == "bfloat16"
    _fake_gpus(monkeypatch, [])
    runtime = Runtime(mixed_precision="auto")
    assert runtime.mixed_precision is None and "CPU" in runtime.precision_reason
    assert keras.mixed_precision.global_policy().name == "float32"
    for asked, policy in (("float32", "float32"), ("bfloat16", "mixed_bfloat16")):
        runtime = Runtime(mixed_precision=asked)
        assert runtime.precision_reason == "asked for"
        assert keras.mixed_precision.global_policy().name == policy
    assert Runtime(mixed_precision="float32").mixed_precision is None
