"""Where and how a training run executes, set up once for both drivers.

The pre-training driver (``training/pretrain.py``) and the fine-tuning driver
(``training/finetune.py``) build the same runtime in the same order, because each
step needs the one before it:

1. precision: the Keras dtype policy, set before any layer exists;
2. strategy: created before other TensorFlow ops (a TPU or a cluster must be joined
   before the runtime starts);
3. chief: the process that writes checkpoints, summaries, exports and messages;
4. worker directory: where this process saves (scratch on non-chief workers);
5. optimizer and loss scaling: built under the strategy once the models exist
   (:meth:`Runtime.create_optimizer`);
6. XLA default: ``--jit_compile``, or the strategy's default (:func:`xla_is_default`).

On a CPU the defaults of 1. and 6. come from a short measurement on the machine, run once
and cached (:mod:`electra_tf.training.precision_probe`); the run's first line gives its
figures (``precision_reason``).

The runtime flags (``--strategy``, ``--tpu``, ``--jit_compile``, ``--mixed_precision``)
are defined here once for both command lines (:func:`define_runtime_flags`).
"""

from __future__ import annotations

import sys
from typing import Callable, Optional, Tuple

import keras
import tensorflow as tf
from absl import flags

from electra_tf.optimization import create_optimizer, with_loss_scaling
from electra_tf.training import precision_probe
from electra_tf.training.strategy import (STRATEGIES, create_strategy, default_precision,
                                         is_chief, set_precision, worker_directory,
                                         xla_is_default, xla_is_probed)

RUNTIME_FLAGS = ("strategy", "tpu", "jit_compile", "mixed_precision")
DEFAULT_STRATEGY = "default"


class Runtime:
    """Precision, strategy, chief, write directory, optimizer and XLA of one run.

    Attributes:
      strategy: the tf.distribute strategy every model and optimizer is built under.
      replicas: ``strategy.num_replicas_in_sync``.
      chief: True where checkpoints, summaries, exports and messages are written.
      write_dir: ``model_dir`` on the chief, a scratch directory on other workers (None
        without a model_dir).
      mixed_precision: None (float32), "bfloat16" or "float16" (float16 adds loss
        scaling): the one asked for, or the device's default (:func:`default_precision`).
      precision_reason: why, in words ("asked for", or the default's reason).
      jit_compile: whether train steps are XLA-compiled.
      xla_reason: why ("asked for"; on one CPU replica the probe's figures, as in
        ``precision_reason`` when the precision is the default).
    """

    def __init__(self, strategy: str = DEFAULT_STRATEGY, tpu: Optional[str] = None,
                 jit_compile: Optional[bool] = None, mixed_precision: Optional[str] = None,
                 model_dir: Optional[str] = None):
        if mixed_precision == "auto":
            mixed_precision, self.precision_reason = default_precision(strategy)
        else:
            self.precision_reason = "asked for"
        mixed_precision = None if mixed_precision in (None, "", "float32") else mixed_precision
        set_precision(mixed_precision)
        self.mixed_precision = mixed_precision
        self.strategy_name = strategy
        self.strategy = create_strategy(strategy, tpu)  # first: before other TF ops
        self.replicas = self.strategy.num_replicas_in_sync
        # Other workers train in lockstep; the chief reports and writes.
        self.chief = is_chief(self.strategy)
        self.write_dir = (worker_directory(model_dir, self.strategy) if model_dir is not None
                          else None)
        # A function of the devices (and on a CPU of the probe, cached per machine):
        # decided now, used by the train steps built later.
        self.jit_compile = jit_compile if jit_compile is not None else xla_is_default(
            self.strategy, mixed_precision)
        if jit_compile is not None:
            self.xla_reason = "asked for"
        elif mixed_precision != "float16" and xla_is_probed(self.strategy):
            self.xla_reason = precision_probe.cpu_defaults().reason()
        else:
            self.xla_reason = "the default on this strategy and device"

    @classmethod
    def from_options(cls, options, model_dir: Optional[str] = None) -> "Runtime":
        """The runtime of run options carrying the runtime fields (``RunOptions``,
        ``FinetuneOptions``): ``strategy``, ``tpu``, ``jit_compile``, ``mixed_precision``."""
        return cls(**{name: getattr(options, name) for name in RUNTIME_FLAGS},
                   model_dir=model_dir)

    def create_optimizer(self, models, **hyperparameters
                         ) -> Tuple[keras.optimizers.Optimizer, keras.optimizers.Optimizer]:
        """Builds the optimizer of ``models`` under the strategy, with loss scaling.

        Args:
          models: what :func:`electra_tf.optimization.create_optimizer` takes.
          hyperparameters: its keyword arguments (learning rate, schedule, optimizer name).
        Returns:
          ``(base_optimizer, optimizer)``: the AdamWeightDecay or LAMB optimizer, which
          holds the step, slots and learning rate (checkpoint and export it), and the one
          that applies updates: with float16 a LossScaleOptimizer around it, else itself.
        """
        with self.strategy.scope():
            base_optimizer = create_optimizer(models, **hyperparameters)
            return base_optimizer, with_loss_scaling(base_optimizer, self.mixed_precision)

    def printer(self, quiet: bool = False) -> Callable[[str], None]:
        """A function printing one progress line to stderr, on the chief only and unless
        ``quiet``."""
        if quiet or not self.chief:
            return lambda message: None
        return lambda message: print(message, file=sys.stderr, flush=True)


def scale_loss(optimizer: keras.optimizers.Optimizer, loss: tf.Tensor) -> tf.Tensor:
    """``loss`` multiplied by the loss scale when ``optimizer`` is a LossScaleOptimizer."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer.scale_loss(loss)
    return loss


def define_runtime_flags(flag_values: flags.FlagValues) -> None:
    """Defines --strategy, --tpu, --jit_compile and --mixed_precision on ``flag_values``."""
    flags.DEFINE_enum("strategy", DEFAULT_STRATEGY, list(STRATEGIES),
                      "default: one GPU if present, else the CPU; mirrored: all local GPUs; "
                      "multi_worker: workers from TF_CONFIG; tpu: --tpu.",
                      flag_values=flag_values)
    flags.DEFINE_string("tpu", None, "TPU name or address for --strategy=tpu.",
                        flag_values=flag_values)
    flags.DEFINE_boolean("jit_compile", None,
                         "XLA-compile the step. Default: on with one GPU or a TPU, off with "
                         "several CPU replicas; on one CPU measured: on where XLA was faster "
                         "in the run's precision in the CPU probe (cached per machine; "
                         "python -m electra_tf.training.precision_probe re-measures).",
                         flag_values=flag_values)
    flags.DEFINE_enum("mixed_precision", "auto", ["auto", "float32", "bfloat16", "float16"],
                      "Compute precision (weights, losses, softmax/LayerNorm statistics and "
                      "pre-training's sampling stay float32; float16 adds dynamic loss "
                      "scaling). auto: bfloat16 on a TPU and on GPUs with bfloat16 tensor cores "
                      "(compute capability >= 8.0), float32 on other GPUs; on CPUs the faster "
                      "of float32 and bfloat16 measured by the CPU probe (the run's first line "
                      "gives its figures).",
                      flag_values=flag_values)


def runtime_options(flag_values: flags.FlagValues) -> dict:
    """The parsed runtime flags as keyword arguments of RunOptions / FinetuneOptions /
    :class:`Runtime`."""
    return {name: flag_values[name].value for name in RUNTIME_FLAGS}
