"""The fastest compute precision and XLA setting of this CPU, measured once and cached.

Whether bfloat16 and XLA pay on a CPU depends on the CPU: with AVX-512-bf16 (Zen 4)
oneDNN's bfloat16 matmuls run at twice the float32 rate and XLA's at less than float32's;
on a Xeon with AVX-512-bf16 but no AMX oneDNN's bfloat16 kernel was the slow one and XLA's
fast; without bfloat16 instructions (AVX2) bfloat16 is emulated. So the CPU defaults of
``--mixed_precision=auto`` and ``--jit_compile`` come from a measurement on the machine at
hand, :func:`cpu_defaults`:

* the probe: the model's own code as it trains, ELECTRA-Small's discriminator cut to one
  layer (embeddings over the 30522-word vocabulary, an encoder layer with attention,
  dropout and LayerNorm, the replaced-token head; forward, loss and backward) on 16
  sequences of 128 tokens, in the four configurations float32 / bfloat16 (Keras'
  ``mixed_bfloat16`` policy: float32 variables, bfloat16 matmuls) x TensorFlow graph
  (oneDNN) / XLA. Each is traced (compiled) and warmed up, then timed in interleaved
  rounds (a burst of load elsewhere hits all four alike); the median per configuration.
  Its cost (mostly tracing and XLA compilation, paid once per machine) is in README's
  "Speed" section, measured, not here.
* the decision (:func:`decide`): the precision of the fastest configuration, unless it is
  not at least ``MARGIN`` (5%) faster than float32 without XLA; for each precision, XLA on
  only where it is ``MARGIN`` faster than without (compiling costs time at start and a
  tie is not worth it).
* the cache: a JSON file (``$XDG_CACHE_HOME/electra_tf/cpu_defaults.json``, default
  ``~/.cache/electra_tf/``), one entry per CPU model, hash of the CPU flags, usable cores,
  TensorFlow version and probe version, written atomically; an unreadable file is
  ignored and rewritten.

Environment:
  ``ELECTRA_TF_PROBE``: ``auto`` (default: the cached figures, else probe), ``refresh``
  (probe again and rewrite the cache entry), ``off`` (no probe: float32, XLA only in
  half precision, the rule before the probe).
  ``ELECTRA_TF_PROBE_CACHE``: the cache directory, or ``off`` to neither read nor write a
  cache file (the probe then runs once per process).

``python -m electra_tf.training.precision_probe`` probes again, prints the figures and the
decision, and refreshes the cache.

Only CPUs are probed: TPUs and GPUs keep their rules in :mod:`electra_tf.training.strategy`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from typing import Callable, Dict, Optional, Tuple

from electra_tf.io_utils import first_line

# (precision, xla) in the order they are printed; float32 without XLA is the reference.
CONFIGS: Tuple[Tuple[str, bool], ...] = (("float32", False), ("bfloat16", False),
                                         ("float32", True), ("bfloat16", True))
BASELINE = ("float32", False)
# Another configuration must be this much faster (time <= (1 - MARGIN) x) to be chosen.
MARGIN = 0.05
# Bump when the probe's workload changes: cached figures of another workload are not used.
PROBE_VERSION = 2
CACHE_FILE = "cpu_defaults.json"
ENV_MODE = "ELECTRA_TF_PROBE"
ENV_CACHE = "ELECTRA_TF_PROBE_CACHE"
MODES = ("auto", "refresh", "off")

# The probe: ELECTRA-Small's discriminator cut to one layer, on 16 sequences of 128 tokens.
# (Smaller pieces mislead: on an AVX2 EPYC a lone feed-forward block, and a lone encoder
# layer at some batch sizes, were faster under XLA while the training step was slower; with
# the embeddings and the head the probe agreed with the step. README "Speed" has figures.)
PROBE_MODEL_SIZE = "small"
PROBE_HPARAMS = {"model_hparam_overrides": {"num_hidden_layers": 1}}
PROBE_BATCH = 16
PROBE_LENGTH = 128
PROBE_ROUNDS = 5


def config_name(precision: str, xla: bool) -> str:
    return precision + ("+XLA" if xla else "")


_SHORT = {"float32": "f32", "bfloat16": "bf16"}


# ---------------------------------------------------------------------------
# The decision
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CpuDefaults:
    """What a CPU run uses by default, and the figures it was decided from.

    Attributes:
      precision: None (float32) or "bfloat16": ``--mixed_precision=auto``.
      xla: ``{"float32": bool, "bfloat16": bool}``: ``--jit_compile``'s default in each
        precision (:meth:`xla_for`).
      seconds: ``{(precision, xla): median seconds of one probe call}`` (empty when the
        probe is off).
      cpu, cores: the CPU model name and the cores this process may use.
      source: "probe" (measured now), "cache" (read from the cache file), "off"
        (``ELECTRA_TF_PROBE=off``: the rule before the probe) or "failed" (the probe
        raised: the rule before the probe, not cached).
      probe_s: what the probe cost (seconds, TensorFlow import excluded) when it ran.
    """

    precision: Optional[str]
    xla: Dict[str, bool]
    seconds: Dict[Tuple[str, bool], float]
    cpu: str = ""
    cores: int = 0
    source: str = "probe"
    probe_s: float = 0.0

    @property
    def cached(self) -> bool:
        return self.source == "cache"

    def xla_for(self, precision: Optional[str]) -> bool:
        """The XLA default for a run in ``precision`` (None/"float32", "bfloat16",
        "float16"). float16 is not probed (a GPU format; on CPUs XLA as before)."""
        precision = precision or "float32"
        if precision == "float16":
            return True
        return bool(self.xla.get(precision, False))

    def speeds(self) -> Dict[Tuple[str, bool], float]:
        """Speed of each configuration relative to float32 without XLA (> 1: faster)."""
        if BASELINE not in self.seconds:
            return {}
        return {config: self.seconds[BASELINE] / seconds
                for config, seconds in self.seconds.items()}

    def figures(self) -> str:
        """``f32 1.00x, bf16 0.84x, f32+XLA 0.93x, bf16+XLA 1.02x``."""
        speeds = self.speeds()
        return ", ".join(f"{_SHORT[p]}{'+XLA' if x else ''} {speeds[(p, x)]:.2f}x"
                         for p, x in CONFIGS if (p, x) in speeds)

    def reason(self) -> str:
        """Why: the probe's figures (speed vs float32 without XLA), for the run's first line."""
        if self.source == "off":
            return (f"the default on CPUs without a probe ({ENV_MODE}=off): float32, XLA only "
                    "in bfloat16/float16")
        if self.source == "failed":
            return ("the default on CPUs when the probe fails: float32, XLA only in "
                    "bfloat16/float16")
        where = f"{self.cpu or 'this CPU'} ({self.cores} core{'s' if self.cores != 1 else ''})"
        how = ("cached" if self.cached else f"probe took {self.probe_s:.1f} s")
        return (f"fastest of 4 on {where} by the probe, speed vs float32: {self.figures()}; "
                f"{how}")


def decide(seconds: Dict[Tuple[str, bool], float], margin: float = MARGIN
           ) -> Tuple[Optional[str], Dict[str, bool]]:
    """(default precision, {precision: XLA default}) from the probe's median seconds.

    The precision is that of the fastest configuration if that one is at least ``margin``
    faster than float32 without XLA, else float32. In each precision XLA is on only if it
    is at least ``margin`` faster than the same precision without. So the default
    (precision, its XLA setting) is never more than ``margin`` slower than the fastest of
    the four, and float32 without XLA (no compiling at start, full precision) wins ties.
    """
    missing = [config for config in CONFIGS if config not in seconds]
    if missing:
        raise ValueError(f"probe figures lack {missing}")
    if not all(seconds[c] > 0 for c in CONFIGS):
        raise ValueError(f"probe figures must be positive seconds, got {seconds}")
    fastest = min(CONFIGS, key=lambda c: (seconds[c], CONFIGS.index(c)))
    beats = seconds[fastest] <= (1.0 - margin) * seconds[BASELINE]
    precision = fastest[0] if beats else "float32"
    xla = {p: seconds[(p, True)] <= (1.0 - margin) * seconds[(p, False)]
           for p in ("float32", "bfloat16")}
    return (None if precision == "float32" else precision), xla


# ---------------------------------------------------------------------------
# The machine and the cache
# ---------------------------------------------------------------------------


def _cpuinfo() -> Tuple[str, str]:
    """(model name, flags) of the first CPU in /proc/cpuinfo, else from ``platform``."""
    model = flags = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if not model and key in ("model name", "hardware", "cpu model"):
                    model = value.strip()
                elif not flags and key in ("flags", "features"):
                    flags = " ".join(sorted(value.split()))
                if model and flags:
                    break
    except OSError:
        pass
    return model or platform.processor() or platform.machine() or "unknown CPU", flags


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def machine_key() -> Dict[str, object]:
    """What the answer depends on: CPU model, its flags (hashed), cores, TF version."""
    import tensorflow as tf
    model, flags = _cpuinfo()
    return {"cpu": model, "flags_sha1": hashlib.sha1(flags.encode()).hexdigest()[:16],
            "cores": usable_cores(), "tensorflow": tf.__version__, "probe": PROBE_VERSION}


def _key_string(key: Dict[str, object]) -> str:
    return json.dumps(key, sort_keys=True)


def cache_path() -> Optional[str]:
    """The cache file, or None when ``ELECTRA_TF_PROBE_CACHE=off``."""
    where = os.environ.get(ENV_CACHE, "").strip()
    if where.lower() in ("off", "none", "0", "false"):
        return None
    if not where:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"),
                                                                 ".cache")
        where = os.path.join(base, "electra_tf")
    return os.path.join(where, CACHE_FILE)


def _read_entries(path: str) -> dict:
    """The cache file's entries; {} when it is missing or unreadable (then rewritten)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        entries = data["entries"]
        if not isinstance(entries, dict):
            raise TypeError("entries is not an object")
        return entries
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, TypeError, KeyError):
        return {}  # corrupt: ignored, and replaced at the next write


def _parse_seconds(record) -> Optional[Dict[Tuple[str, bool], float]]:
    """The seconds of a cache entry, or None when the entry is not usable."""
    try:
        seconds = {}
        for p, x in CONFIGS:
            value = float(record["seconds"][config_name(p, x)])
            if not value > 0 or value != value or value == float("inf"):
                return None
            seconds[(p, x)] = value
        return seconds
    except (TypeError, KeyError, ValueError, AttributeError):
        return None


def _write_entry(path: str, key: str, record: dict) -> None:
    """Adds ``record`` under ``key`` to the cache file, atomically (temp file + rename)."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    entries = _read_entries(path)
    entries[key] = record
    fd, tmp = tempfile.mkstemp(prefix=".cpu_defaults.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"format": 1, "entries": entries}, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide it from other users of the cache
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# ---------------------------------------------------------------------------
# The probe
# ---------------------------------------------------------------------------


@contextlib.contextmanager
def _untouched_random_state():
    """Building Keras layers draws default seeds from Python's and Keras' global random
    streams; the probe must not change what a seeded run draws after it."""
    import random

    import numpy as np
    from keras.src.backend.common import global_state
    python_state, numpy_state = random.getstate(), np.random.get_state()
    generator = global_state.get_global_attribute("global_seed_generator")
    generator_state = None if generator is None else generator.state.numpy()
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        if generator is None:
            global_state.set_global_attribute("global_seed_generator", None)
        else:
            generator.state.assign(generator_state)


def _probe_model(precision: str):
    """The discriminator of ELECTRA-Small cut to one layer (``PROBE_HPARAMS``), built under
    the Keras policy of ``precision`` (the global policy is restored)."""
    import keras
    from electra_tf.config import PretrainingConfig
    from electra_tf.networks.discriminator import Discriminator
    config = PretrainingConfig.from_preset(PROBE_MODEL_SIZE,
                                           PROBE_HPARAMS).discriminator_config()
    before = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(
        "mixed_bfloat16" if precision == "bfloat16" else "float32")
    try:
        model = Discriminator(config, name=f"precision_probe_{precision}")
        model.build()
    finally:
        keras.mixed_precision.set_global_policy(before)
    return model, config


def _probe_function(precision: str, xla: bool, model=None):
    """One training call of the probe's model: (function, its arguments).

    The model's own code at its own widths (embeddings, encoder layer with attention,
    dropout and LayerNorm, replaced-token head) on ``PROBE_BATCH`` x ``PROBE_LENGTH``
    tokens, forward, loss and backward, as the train step runs it (float32 variables cast
    to the compute precision by the Keras policy)."""
    import numpy as np
    import tensorflow as tf
    if model is None:
        model, _ = _probe_model(precision)
    config = model.config
    rng = np.random.default_rng(7)
    shape = (PROBE_BATCH, min(PROBE_LENGTH, config.max_position_embeddings))
    inputs = {"input_ids": tf.constant(rng.integers(1000, config.vocab_size, shape), tf.int32),
              "input_mask": tf.ones(shape, tf.int32),
              "segment_ids": tf.zeros(shape, tf.int32)}
    labels = tf.constant(rng.random(shape) < 0.15, tf.float32)

    @tf.function(jit_compile=xla)
    def train_call(inputs, labels):
        with tf.GradientTape() as tape:
            logits = tf.cast(model(inputs, training=True)["logits"], tf.float32)
            loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels, logits))
        grads = tape.gradient(loss, model.trainable_variables)
        return loss + tf.add_n([tf.reduce_sum(tf.convert_to_tensor(g)[:1]) for g in grads])

    return train_call, (inputs, labels)


def measure(rounds: int = PROBE_ROUNDS) -> Dict[Tuple[str, bool], float]:
    """Median seconds of one probe call in each configuration (see the module docstring).

    Each configuration is traced, compiled by its first call and called once more untimed
    (compiling on two threads at once did not make the probe faster on 2 cores); then
    ``rounds`` rounds time one call of each, the order rotating from round to round, so a
    burst of load elsewhere hits all four alike.
    """
    calls = {}
    with _untouched_random_state():
        models = {precision: _probe_model(precision)[0] for precision in ("float32", "bfloat16")}
        models["bfloat16"].set_weights(models["float32"].get_weights())  # the same function
        for config in CONFIGS:
            fn, args = _probe_function(*config, model=models[config[0]])
            fn.get_concrete_function(*args)  # trace (Python: one at a time)
            calls[config] = (fn, args)
    for fn, args in calls.values():
        fn(*args).numpy()  # compile (XLA: the seconds of the probe's cost)
    for fn, args in calls.values():
        fn(*args).numpy()  # warm-up
    times = {config: [] for config in CONFIGS}
    for r in range(rounds):
        order = CONFIGS[r % len(CONFIGS):] + CONFIGS[:r % len(CONFIGS)]
        for config in order:
            fn, args = calls[config]
            start = time.perf_counter()
            fn(*args).numpy()
            times[config].append(time.perf_counter() - start)
    return {config: statistics.median(values) for config, values in times.items()}


# ---------------------------------------------------------------------------
# The one entry point
# ---------------------------------------------------------------------------

_MEMO: Dict[str, CpuDefaults] = {}


def _mode() -> str:
    mode = os.environ.get(ENV_MODE, "auto").strip().lower() or "auto"
    if mode not in MODES:
        raise ValueError(f"{ENV_MODE}={mode!r}: choose one of {', '.join(MODES)}")
    return mode


def cpu_defaults(measure_fn: Optional[Callable[[], Dict[Tuple[str, bool], float]]] = None,
                 refresh: Optional[bool] = None) -> CpuDefaults:
    """The CPU's default precision and XLA settings, with the figures behind them.

    From this process's memo, else the cache file, else by running the probe (and caching
    it). ``refresh`` (or ``ELECTRA_TF_PROBE=refresh``) probes again; ``measure_fn`` replaces
    :func:`measure` (tests inject figures). ``ELECTRA_TF_PROBE=off`` returns the rule
    before the probe without measuring.
    """
    mode = _mode()
    model, _ = _cpuinfo()
    if mode == "off":
        return CpuDefaults(None, {"float32": False, "bfloat16": True}, {}, cpu=model,
                           cores=usable_cores(), source="off")
    refresh = (mode == "refresh") if refresh is None else refresh
    key = machine_key()
    key_string = _key_string(key)
    path = cache_path()
    memo_key = f"{path}|{key_string}"
    if not refresh and memo_key in _MEMO:
        return _MEMO[memo_key]
    if not refresh and path is not None:
        seconds = _parse_seconds(_read_entries(path).get(key_string))
        if seconds is not None:
            precision, xla = decide(seconds)
            result = CpuDefaults(precision, xla, seconds, cpu=model, cores=int(key["cores"]),
                                 source="cache")
            _MEMO[memo_key] = result
            return result
    start = time.perf_counter()
    try:
        seconds = (measure_fn or measure)()
        precision, xla = decide(seconds)
    except Exception as e:  # noqa: BLE001 - a failed probe must not stop the run
        print(f"warning: the precision probe failed ({type(e).__name__}: "
              f"{first_line(e)}); using float32 "
              "and XLA only in half precision", file=sys.stderr)
        result = CpuDefaults(None, {"float32": False, "bfloat16": True}, {}, cpu=model,
                             cores=int(key["cores"]), source="failed")
        _MEMO[memo_key] = result
        return result
    probe_s = time.perf_counter() - start
    result = CpuDefaults(precision, xla, dict(seconds), cpu=model, cores=int(key["cores"]),
                         source="probe", probe_s=probe_s)
    if path is not None:
        record = {**key, "seconds": {config_name(p, x): s for (p, x), s in seconds.items()},
                  "probe_s": round(probe_s, 3),
                  "measured": time.strftime("%Y-%m-%dT%H:%M:%S"),
                  "load_avg_1m": _load_average()}
        try:
            _write_entry(path, key_string, record)
        except OSError as e:  # a read-only home: decide anyway, probe again next time
            print(f"warning: could not cache the precision probe in {path}: {e}",
                  file=sys.stderr)
    _MEMO[memo_key] = result
    return result


def _load_average() -> Optional[float]:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def table(defaults: CpuDefaults) -> str:
    """The probe's figures and the decision, as printed by ``python -m``."""
    lines = [f"{defaults.cpu} ({defaults.cores} cores), probe: ELECTRA-{PROBE_MODEL_SIZE} "
             f"discriminator, {json.dumps(PROBE_HPARAMS)}, {PROBE_BATCH}x{PROBE_LENGTH} "
             "tokens, forward + backward"]
    speeds = defaults.speeds()
    for config in CONFIGS:
        if config in defaults.seconds:
            lines.append(f"  {config_name(*config):<14} {1000 * defaults.seconds[config]:8.1f} ms"
                         f"  {speeds[config]:5.2f}x")
    lines.append(f"default: {defaults.precision or 'float32'}, XLA "
                 f"{'on' if defaults.xla_for(defaults.precision) else 'off'} (XLA by "
                 f"precision: float32 {'on' if defaults.xla_for('float32') else 'off'}, "
                 f"bfloat16 {'on' if defaults.xla_for('bfloat16') else 'off'})")
    if defaults.source == "probe":
        lines.append(f"probe took {defaults.probe_s:.1f} s; cached in {cache_path() or '(off)'}")
    return "\n".join(lines)


def main(argv=None) -> int:
    """``python -m electra_tf.training.precision_probe [--cached]``: probe again (or, with
    ``--cached``, show the cached answer) and print the figures and the decision."""
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(main.__doc__)
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    defaults = cpu_defaults(refresh="--cached" not in argv)
    print(table(defaults))
    return 0


if __name__ == "__main__":
    sys.exit(main())
