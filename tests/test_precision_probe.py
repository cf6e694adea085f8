"""The CPU probe that picks the default precision and XLA setting (issue 26): the decision
rule, the cache, and that every consumer (runtime, strategy, inference) follows it.

Timings are injected: no test here depends on how fast anything runs.
"""

import json
import os
import random
import sys

import keras
import pytest
import tensorflow as tf

from conftest import ROOT
from electra_tf import detection
from electra_tf.training import precision_probe as probe
from electra_tf.training import strategy as strategy_module
from electra_tf.training.runtime import Runtime

F32, BF16, F32X, BF16X = probe.CONFIGS


def figures(f32, bf16, f32x, bf16x):
    return {F32: f32, BF16: bf16, F32X: f32x, BF16X: bf16x}


class FakeProbe:
    """A measure() that returns given figures and counts its calls."""

    def __init__(self, seconds):
        self.seconds, self.calls = seconds, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return dict(self.seconds)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A private cache directory, the probe on, nothing memoised from other tests."""
    directory = tmp_path / "cache"
    monkeypatch.setenv(probe.ENV_CACHE, str(directory))
    monkeypatch.delenv(probe.ENV_MODE, raising=False)
    monkeypatch.setattr(probe, "_MEMO", {})
    return directory


@pytest.fixture
def fake(cache_dir, monkeypatch):
    """Installs a fake probe as probe.measure; set ``fake.seconds`` before the first call."""
    f = FakeProbe(figures(1.0, 1.0, 1.0, 1.0))
    monkeypatch.setattr(probe, "measure", f)
    return f


def no_gpu(monkeypatch):
    monkeypatch.setattr(strategy_module.tf.config, "list_physical_devices",
                        lambda kind=None: [] if kind == "GPU" else
                        [tf.config.PhysicalDevice("/physical_device:CPU:0", "CPU")])


# ---------------------------------------------------------------------------
# The decision rule
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("seconds, precision, xla", [
    # The AVX-512-bf16 Xeon without AMX: float32 fastest, XLA pays in bfloat16 only.
    (figures(1.00, 1.40, 1.12, 1.25), None, {"float32": False, "bfloat16": True}),
    # Zen 4 (the table): bfloat16 on oneDNN fastest, XLA slows both.
    (figures(2.60, 1.80, 2.80, 3.05), "bfloat16", {"float32": False, "bfloat16": False}),
    # An AMX Xeon-like machine where bfloat16 under XLA wins.
    (figures(1.00, 0.60, 1.10, 0.40), "bfloat16", {"float32": False, "bfloat16": True}),
    # float32 under XLA the fastest: float32 with XLA on.
    (figures(1.00, 1.30, 0.80, 1.20), None, {"float32": True, "bfloat16": True}),
    # bfloat16 only 3% faster: not worth it, float32 stays (ties go to float32, no XLA).
    (figures(1.00, 0.97, 1.01, 0.99), None, {"float32": False, "bfloat16": False}),
    # bfloat16+XLA fastest, but bfloat16 without XLA within 5% of it: no compiling.
    (figures(1.00, 0.62, 1.05, 0.60), "bfloat16", {"float32": False, "bfloat16": False}),
])
def test_decision_picks_the_fastest_precision_and_xla_only_where_it_pays(seconds, precision,
                                                                         xla):
    assert probe.decide(seconds) == (precision, xla)


def test_the_default_is_never_more_than_the_margin_slower_than_the_best_of_four():
    rng = random.Random(26)
    for _ in range(2000):
        seconds = {c: rng.uniform(0.5, 2.0) for c in probe.CONFIGS}
        precision, xla = probe.decide(seconds)
        chosen = seconds[(precision or "float32", xla[precision or "float32"])]
        assert chosen <= min(seconds.values()) / (1 - probe.MARGIN) + 1e-12, seconds
        assert precision in (None, "bfloat16")  # never float16: parity is proven for these


def test_decision_rejects_incomplete_or_nonsense_figures():
    with pytest.raises(ValueError, match="lack"):
        probe.decide({F32: 1.0, BF16: 1.0})
    with pytest.raises(ValueError, match="positive"):
        probe.decide(figures(1.0, 0.0, 1.0, 1.0))


def test_reason_gives_the_figures_relative_to_float32():
    defaults = probe.CpuDefaults("bfloat16", {"float32": False, "bfloat16": False},
                                 figures(2.0, 1.0, 2.5, 4.0), cpu="AMD EPYC", cores=2,
                                 source="cache")
    reason = defaults.reason()
    assert "AMD EPYC (2 cores)" in reason and "cached" in reason
    assert "f32 1.00x, bf16 2.00x, f32+XLA 0.80x, bf16+XLA 0.50x" in reason
    assert defaults.xla_for("float16") is True and defaults.xla_for(None) is False


# ---------------------------------------------------------------------------
# The cache
# ---------------------------------------------------------------------------

def test_probe_runs_once_then_the_cache_answers(fake, cache_dir):
    fake.seconds = figures(2.6, 1.8, 2.8, 3.0)
    first = probe.cpu_defaults()
    assert fake.calls == 1 and first.source == "probe" and first.precision == "bfloat16"
    assert probe.cpu_defaults() is first and fake.calls == 1  # memoised in the process
    path = cache_dir / probe.CACHE_FILE
    data = json.loads(path.read_text())
    (key, entry), = data["entries"].items()
    assert json.loads(key) == probe.machine_key()
    assert entry["seconds"] == {"float32": 2.6, "bfloat16": 1.8, "float32+XLA": 2.8,
                                "bfloat16+XLA": 3.0}
    assert [p for p in os.listdir(cache_dir) if p != probe.CACHE_FILE] == []  # no temp files

    probe._MEMO.clear()  # a new process
    again = probe.cpu_defaults()
    assert fake.calls == 1 and again.source == "cache" and again.cached
    assert (again.precision, again.xla, again.seconds) == (first.precision, first.xla,
                                                           first.seconds)
    assert "cached" in again.reason()


def test_refresh_probes_again_by_argument_or_environment(fake, cache_dir, monkeypatch):
    fake.seconds = figures(1.0, 1.4, 1.1, 1.3)
    assert probe.cpu_defaults().precision is None
    fake.seconds = figures(2.6, 1.8, 2.8, 3.0)
    assert probe.cpu_defaults(refresh=True).precision == "bfloat16" and fake.calls == 2
    probe._MEMO.clear()
    assert probe.cpu_defaults().source == "cache"  # the refreshed figures were cached
    monkeypatch.setenv(probe.ENV_MODE, "refresh")
    fake.seconds = figures(1.0, 1.4, 1.1, 1.3)
    assert probe.cpu_defaults().precision is None and fake.calls == 3


def test_probe_off_keeps_the_old_rule_without_measuring(fake, monkeypatch):
    monkeypatch.setenv(probe.ENV_MODE, "off")
    defaults = probe.cpu_defaults()
    assert fake.calls == 0 and defaults.source == "off" and defaults.precision is None
    assert defaults.xla_for("float32") is False and defaults.xla_for("bfloat16") is True
    assert "ELECTRA_TF_PROBE=off" in defaults.reason()
    monkeypatch.setenv(probe.ENV_MODE, "sometimes")
    with pytest.raises(ValueError, match="ELECTRA_TF_PROBE"):
        probe.cpu_defaults()


def test_a_failing_probe_falls_back_to_the_old_rule_and_caches_nothing(cache_dir, monkeypatch,
                                                                      capsys):
    def broken():
        raise RuntimeError("XLA is not available here")
    monkeypatch.setattr(probe, "measure", broken)
    defaults = probe.cpu_defaults()
    assert defaults.source == "failed" and defaults.precision is None
    assert defaults.xla_for("float32") is False and defaults.xla_for("bfloat16") is True
    assert "XLA is not available here" in capsys.readouterr().err
    assert not (cache_dir / probe.CACHE_FILE).exists()


def test_cache_off_writes_nothing_and_probes_once_per_process(fake, tmp_path, monkeypatch):
    monkeypatch.setenv(probe.ENV_CACHE, "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert probe.cache_path() is None
    probe.cpu_defaults()
    probe.cpu_defaults()
    assert fake.calls == 1 and not (tmp_path / "xdg").exists()


def test_default_location_follows_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.delenv(probe.ENV_CACHE, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert probe.cache_path() == str(tmp_path / "electra_tf" / probe.CACHE_FILE)


@pytest.mark.parametrize("content", [
    b"\x00\xff not json",
    b'{"format": 1, "entries": ["a list"]}',
    b"[1, 2, 3]",
    b"",
])
def test_a_corrupt_cache_file_is_ignored_and_rewritten(fake, cache_dir, content):
    cache_dir.mkdir()
    (cache_dir / probe.CACHE_FILE).write_bytes(content)
    fake.seconds = figures(1.0, 0.5, 1.2, 0.9)
    defaults = probe.cpu_defaults()
    assert defaults.source == "probe" and defaults.precision == "bfloat16"
    data = json.loads((cache_dir / probe.CACHE_FILE).read_text())
    assert len(data["entries"]) == 1


def test_an_unusable_entry_is_measured_again(fake, cache_dir):
    cache_dir.mkdir()
    key = probe._key_string(probe.machine_key())
    bad = {"seconds": {"float32": 1.0, "bfloat16": -1, "float32+XLA": 1.0,
                       "bfloat16+XLA": 1.0}}
    (cache_dir / probe.CACHE_FILE).write_text(json.dumps({"format": 1,
                                                          "entries": {key: bad}}))
    assert probe.cpu_defaults().source == "probe" and fake.calls == 1


def test_another_cpu_core_count_or_tensorflow_version_is_another_entry(fake, cache_dir,
                                                                      monkeypatch):
    probe.cpu_defaults()
    real_key = probe.machine_key
    for change in ({"cores": 64}, {"tensorflow": "9.9.9"}, {"flags_sha1": "0" * 16},
                   {"cpu": "Another CPU"}):
        monkeypatch.setattr(probe, "machine_key", lambda change=change: {**real_key(),
                                                                         **change})
        before = fake.calls
        probe.cpu_defaults()
        assert fake.calls == before + 1, change
    entries = json.loads((cache_dir / probe.CACHE_FILE).read_text())["entries"]
    assert len(entries) == 5


def test_the_key_names_the_cpu_its_flags_cores_and_tensorflow():
    key = probe.machine_key()
    assert key["tensorflow"] == tf.__version__ and key["cores"] >= 1
    assert key["cpu"] and len(key["flags_sha1"]) == 16 and key["probe"] == probe.PROBE_VERSION


def test_an_unwritable_cache_warns_and_still_decides(fake, tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    monkeypatch.setenv(probe.ENV_CACHE, str(blocker / "cache"))
    fake.seconds = figures(1.0, 0.5, 1.2, 0.9)
    assert probe.cpu_defaults().precision == "bfloat16"
    assert "could not cache" in capsys.readouterr().err


def test_module_command_reprobes_and_prints_the_table(fake, cache_dir, capsys):
    fake.seconds = figures(0.10, 0.05, 0.12, 0.09)
    assert probe.main([]) == 0 and fake.calls == 1
    out = capsys.readouterr().out
    assert "bfloat16" in out and "2.00x" in out and "default: bfloat16, XLA off" in out
    assert probe.main([]) == 0 and fake.calls == 2  # always measures again
    assert probe.main(["--cached"]) == 0 and fake.calls == 2


# ---------------------------------------------------------------------------
# Every consumer follows the probe
# ---------------------------------------------------------------------------

@pytest.fixture
def restore_policy():
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("seconds, precision, xla", [
    (figures(2.6, 1.8, 2.8, 3.0), "bfloat16", False),   # Zen 4-like
    (figures(1.0, 1.4, 0.8, 1.3), None, True),          # float32 under XLA fastest
    (figures(1.0, 1.4, 1.1, 1.3), None, False),         # float32 without XLA fastest
    (figures(1.0, 0.7, 1.1, 0.5), "bfloat16", True),    # bfloat16 under XLA fastest
])
def test_the_runtime_defaults_follow_the_probe(fake, monkeypatch, restore_policy, seconds,
                                               precision, xla):
    no_gpu(monkeypatch)
    fake.seconds = seconds
    runtime = Runtime(mixed_precision="auto")
    assert (runtime.mixed_precision, runtime.jit_compile) == (precision, xla)
    assert keras.mixed_precision.global_policy().name == (
        "mixed_bfloat16" if precision else "float32")
    assert "by the probe" in runtime.precision_reason and "bf16+XLA" in runtime.precision_reason
    assert "by the probe" in runtime.xla_reason
    assert strategy_module.default_precision("default") == (precision,
                                                            runtime.precision_reason)
    # An explicit flag always wins.
    assert Runtime(mixed_precision="auto", jit_compile=not xla).jit_compile is (not xla)
    explicit = Runtime(mixed_precision="float32")
    assert explicit.mixed_precision is None and explicit.precision_reason == "asked for"
    assert fake.calls == 1


def test_xla_default_of_an_asked_precision_is_the_probes_for_that_precision(
        fake, monkeypatch, restore_policy):
    no_gpu(monkeypatch)
    fake.seconds = figures(1.0, 1.6, 1.2, 1.0)  # XLA pays in bfloat16 only
    cpu = tf.distribute.OneDeviceStrategy("/cpu:0")
    assert strategy_module.xla_is_default(cpu, "bfloat16") is True
    assert strategy_module.xla_is_default(cpu, "float32") is False
    assert strategy_module.xla_is_default(cpu, None) is False
    assert strategy_module.xla_is_default(cpu, "float16") is True  # not probed
    runtime = Runtime(mixed_precision="bfloat16")
    assert runtime.jit_compile is True and runtime.precision_reason == "asked for"
    assert "f32+XLA 0.83x" in runtime.xla_reason
    assert Runtime(mixed_precision="bfloat16", jit_compile=False).xla_reason == "asked for"


class _Replicas:
    """A strategy stand-in with several replicas (no logical devices needed)."""
    num_replicas_in_sync = 2


def test_no_probe_on_tpus_gpus_several_replicas_or_several_workers(fake, monkeypatch):
    assert strategy_module.default_precision("tpu")[0] == "bfloat16"
    assert strategy_module.xla_is_default(_Replicas(), "bfloat16") is False
    assert not strategy_module.xla_is_probed(_Replicas())
    no_gpu(monkeypatch)
    assert strategy_module.default_precision("multi_worker")[0] is None
    devices = [tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU")]
    monkeypatch.setattr(strategy_module.tf.config, "list_physical_devices",
                        lambda kind=None: devices if kind == "GPU" else [])
    monkeypatch.setattr(strategy_module.tf.config.experimental, "get_device_details",
                        lambda device: {"compute_capability": (8, 0)})
    precision, reason = strategy_module.default_precision("default")
    assert precision == "bfloat16" and "GPU" in reason
    assert fake.calls == 0


class _Model:
    def __init__(self, compute_dtype):
        self.compute_dtype = compute_dtype


def test_inference_precision_and_xla_follow_the_probe(fake, monkeypatch, restore_policy):
    no_gpu(monkeypatch)
    fake.seconds = figures(2.6, 1.8, 2.2, 3.0)  # bfloat16 fastest; XLA pays in float32 only
    assert detection.use_xla(_Model("bfloat16")) is False
    assert detection.use_xla(_Model("float32")) is True
    assert detection.use_xla(_Model("float32"), jit_compile=False) is False
    assert detection.use_xla(_Model("bfloat16"), jit_compile=True) is True
    with detection.keras_precision("auto") as precision:
        assert precision == "bfloat16"
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"
    with detection.keras_precision("float32") as precision:
        assert precision == "float32"
    assert fake.calls == 1


# ---------------------------------------------------------------------------
# The probe itself computes the same function in all four configurations
# ---------------------------------------------------------------------------

TINY_PROBE = {"embedding_size": 16, "model_hparam_overrides": {
    "num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 2,
    "intermediate_size": 64, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}}


def test_probe_runs_the_models_own_step_in_each_configuration(monkeypatch):
    """The same function in all four configurations (dropout off here), matmuls in the
    compute precision as under Keras' mixed policy, and global random streams untouched."""
    import numpy as np
    monkeypatch.setattr(probe, "PROBE_HPARAMS", TINY_PROBE)
    monkeypatch.setattr(probe, "PROBE_BATCH", 2)
    monkeypatch.setattr(probe, "PROBE_LENGTH", 8)
    keras.utils.set_random_seed(5)
    expected = (random.random(), np.random.random())
    keras.utils.set_random_seed(5)
    with probe._untouched_random_state():
        models = {p: probe._probe_model(p)[0] for p in ("float32", "bfloat16")}
    assert (random.random(), np.random.random()) == expected
    assert keras.mixed_precision.global_policy().name == "float32"
    assert models["bfloat16"].compute_dtype == "bfloat16"
    assert models["float32"].config.num_hidden_layers == 1
    models["bfloat16"].set_weights(models["float32"].get_weights())
    values = {}
    for config in probe.CONFIGS:
        fn, args = probe._probe_function(*config, model=models[config[0]])
        values[config] = float(fn(*args).numpy())
        graph = fn.get_concrete_function(*args).graph
        dtypes = {op.get_attr("T") for op in graph.get_operations()
                  if op.type in ("MatMul", "BatchMatMulV2")}
        assert dtypes == {tf.as_dtype(config[0])}, (config, dtypes)
    assert values[F32X] == pytest.approx(values[F32], rel=1e-4)
    assert values[BF16X] == pytest.approx(values[BF16], rel=3e-2)
    assert values[BF16] == pytest.approx(values[F32], rel=5e-2)


def test_measure_times_every_configuration_in_rounds(monkeypatch):
    """measure() times one call of each configuration per round (with a fake clock:
    no wall-clock assertion) and returns the median per configuration."""
    calls = []

    class FakeModel:
        def get_weights(self):
            return []

        def set_weights(self, weights):
            pass

    class FakeFunction:
        def __init__(self, config):
            self.config = config

        def get_concrete_function(self, *args):
            return None

        def __call__(self, *args):
            calls.append(self.config)
            return tf.constant(0.0)

    monkeypatch.setattr(probe, "_probe_model", lambda precision: (FakeModel(), None))
    monkeypatch.setattr(probe, "_probe_function",
                        lambda precision, xla, model=None: (FakeFunction((precision, xla)), ()))
    clock = iter(range(1000))
    monkeypatch.setattr(probe.time, "perf_counter", lambda: float(next(clock)))
    seconds = probe.measure(rounds=3)
    assert set(seconds) == set(probe.CONFIGS)
    assert all(v == 1.0 for v in seconds.values())  # each timed call spans one tick
    assert sorted(calls[:8]) == sorted(probe.CONFIGS * 2)  # compile + warm-up each
    timed = calls[8:]
    assert len(timed) == 3 * len(probe.CONFIGS)
    assert timed[:4] != timed[4:8]  # the order rotates from round to round
    assert all(sorted(timed[i:i + 4]) == sorted(probe.CONFIGS) for i in (0, 4, 8))
