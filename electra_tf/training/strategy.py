"""Choosing a tf.distribute strategy from a flag, and what follows from it (chief, worker
directory, XLA default, precision). ``training/runtime.py`` calls these in their order."""

from __future__ import annotations

import json
import os
import re
from typing import Optional

import keras
import tensorflow as tf

from electra_tf.io_utils import first_line
from electra_tf.training import precision_probe

STRATEGIES = ("default", "one_device", "mirrored", "multi_worker", "tpu")


class StrategyError(ValueError):
    """The requested strategy cannot run on this machine."""


def enable_gpu_memory_growth() -> None:
    """Lets TensorFlow grow GPU memory on demand instead of grabbing all of it."""
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # devices already initialised; nothing to do
            pass


def create_strategy(name: str = "default", tpu: str | None = None) -> tf.distribute.Strategy:
    """Builds a strategy.

    Args:
      name: ``default`` (one GPU if present, else the CPU), ``one_device`` (same),
        ``mirrored`` (all local GPUs, or the CPU), ``multi_worker`` (workers from
        ``TF_CONFIG``), ``tpu`` (``tpu`` = name/address, or "" for a local TPU VM).
    """
    if name not in STRATEGIES:
        raise StrategyError(f"unknown --strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, tf.errors.OpError, RuntimeError) as e:
            raise StrategyError(
                f"--strategy=tpu but no TPU could be reached (tpu={tpu!r}): "
                f"{first_line(e)}. "
                "Run on a Cloud TPU VM or pass --tpu=<name>; use --strategy=default elsewhere"
            ) from e
        return tf.distribute.TPUStrategy(resolver)
    enable_gpu_memory_growth()
    if name == "multi_worker":
        config = os.environ.get("TF_CONFIG")
        if not config:
            raise StrategyError("--strategy=multi_worker needs the TF_CONFIG environment "
                                "variable describing the cluster and this worker's task")
        try:
            json.loads(config)
        except json.JSONDecodeError as e:
            raise StrategyError(f"TF_CONFIG is not valid JSON: {e.msg}") from e
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored":
        if gpus:
            return tf.distribute.MirroredStrategy()
        # No GPU: mirror over the logical CPU devices if several were configured
        # (tf.config.set_logical_device_configuration), which tests distribution logic.
        cpus = tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in cpus])
    device = gpus[0].name if gpus else "/cpu:0"
    return tf.distribute.OneDeviceStrategy(device)


def _task(strategy: tf.distribute.Strategy):
    """(task_type, task_id, has_chief) of this process in a multi-worker cluster, else None."""
    resolver = getattr(strategy.extended, "_cluster_resolver", None) or getattr(
        strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return None
    spec = resolver.cluster_spec().as_dict()
    return resolver.task_type, resolver.task_id, "chief" in spec


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True where checkpoints, summaries and exports are written.

    Every single-process strategy is its own chief; in a multi-worker cluster the
    chief is the ``chief`` task if the cluster has one, else worker 0 (TF's rule).
    """
    task = _task(strategy)
    if task is None:
        return True
    task_type, task_id, has_chief = task
    return task_type == "chief" or (not has_chief and task_type == "worker" and task_id == 0)


def worker_directory(model_dir: str, strategy: tf.distribute.Strategy) -> str:
    """``model_dir`` on the chief; a private scratch directory on other workers.

    Every worker must take part in saving a checkpoint (variables may be read
    collectively), but only the chief's copy is kept: the others write under
    ``<model_dir>/.workers/<task>_<id>`` and delete it when they finish.
    """
    if is_chief(strategy):
        return model_dir
    task_type, task_id, _ = _task(strategy)
    return os.path.join(model_dir, ".workers", f"{task_type}_{task_id}")


# Raised by collective ops when a peer worker died or stopped answering.
CLUSTER_FAILURES = (tf.errors.UnavailableError, tf.errors.AbortedError,
                    tf.errors.DeadlineExceededError, tf.errors.CancelledError)


def cluster_failure(error: Exception, step: int, model_dir: str) -> StrategyError:
    """One clear error for a multi-worker step that failed because a worker went away."""
    text = getattr(error, "message", None) or str(error)
    tasks = sorted(set(re.findall(r"/job:[\w-]+/replica:\d+/task:\d+", text)))
    latest = tf.train.latest_checkpoint(model_dir)
    where = os.path.basename(latest) if latest else "the start (no checkpoint yet)"
    return StrategyError(
        f"the cluster lost a worker at step {step}"
        + (f" ({', '.join(tasks)} stopped answering)" if tasks else "")
        + f"; restart every worker with the same command: the run resumes from {where} "
        f"in {model_dir}")


def xla_is_default(strategy: tf.distribute.Strategy,
                   mixed_precision: Optional[str] = None) -> bool:
    """Whether to XLA-compile the train step when --jit_compile is not given.

    On with a single GPU (or TPU); off with several replicas on CPUs (XLA with several
    replicas on logical CPU devices fails outright). For one CPU replica it is measured:
    on if XLA was at least 5% faster than the TensorFlow graph in ``mixed_precision``
    (None/"float32" or "bfloat16"; float16 always on) in the probe of
    :func:`electra_tf.training.precision_probe.cpu_defaults` (run once per machine and
    cached): which one wins depends on the CPU (XLA's bfloat16 matmuls ran at 1.6x
    oneDNN's on an AVX-512-bf16 Xeon without AMX, at 0.4x on a Zen 4 EPYC).
    """
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return True
    if strategy.num_replicas_in_sync != 1:
        return False
    if tf.config.list_logical_devices("GPU"):
        return True
    return precision_probe.cpu_defaults().xla_for(mixed_precision)


def xla_is_probed(strategy: tf.distribute.Strategy) -> bool:
    """Whether :func:`xla_is_default` decides from the CPU probe (one CPU replica)."""
    return (not isinstance(strategy, tf.distribute.TPUStrategy)
            and strategy.num_replicas_in_sync == 1
            and not tf.config.list_logical_devices("GPU"))


def default_precision(strategy_name: str) -> tuple[Optional[str], str]:
    """The precision a run uses when --mixed_precision is not given, and why.

    Returns ``("bfloat16", reason)`` on a TPU and on GPUs with bfloat16 tensor cores
    (compute capability 8.0 and up), ``(None, reason)`` (float32) on other GPUs. On CPUs
    the precision is measured: the fastest configuration of the probe of
    :func:`electra_tf.training.precision_probe.cpu_defaults` (float32 unless bfloat16 was
    at least 5% faster), and the reason gives its figures. Several CPU workers
    (``multi_worker``) take float32 without a probe: they must agree, and their strategy
    must exist before any TensorFlow op runs.
    Decided before the strategy is built, from the physical devices (and the probe).
    """
    if strategy_name == "tpu":
        return "bfloat16", "the default on a TPU"
    capabilities = []
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            capabilities.append(
                tuple(tf.config.experimental.get_device_details(gpu)["compute_capability"]))
        except (KeyError, TypeError, ValueError, RuntimeError):
            capabilities.append((0, 0))  # unknown: do not assume bfloat16 tensor cores
    if capabilities and min(capabilities) >= (8, 0):
        return "bfloat16", ("the default on GPUs with bfloat16 tensor cores (compute "
                            "capability >= 8.0)")
    if capabilities:
        return None, "the default on GPUs without bfloat16 tensor cores"
    if strategy_name == "multi_worker":
        return None, "the default for several CPU workers (no probe: they must agree)"
    defaults = precision_probe.cpu_defaults()
    return defaults.precision, defaults.reason()


def set_precision(mixed_precision: Optional[str]) -> None:
    """Sets the Keras dtype policy: float32, or mixed bfloat16/float16 (weights stay float32)."""
    policies = {None: "float32", "": "float32", "float32": "float32",
                "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
    if mixed_precision not in policies:
        raise StrategyError(f"--mixed_precision must be float32, bfloat16 or float16, "
                            f"got {mixed_precision!r}")
    keras.mixed_precision.set_global_policy(policies[mixed_precision])
