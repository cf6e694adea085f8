"""Optimisation shared by pre-training and fine-tuning (spec 4).

* :class:`WarmupPolynomialDecay`: the learning-rate schedule of spec 4.1.
* :class:`AdamWeightDecay`: the original optimizer (spec 4.2) with global-norm
  clipping of all gradients together (spec 4.3), weight-decay exclusions and
  per-variable LR multipliers decided by *original* (TF1) variable names, and
  slots known by original name (:meth:`AdamWeightDecay.slots_by_original_name`;
  written and read as ``<name>/adam_m`` / ``<name>/adam_v`` by
  :mod:`electra_tf.formats.tf1`).
* :class:`Lamb`: the optional large-batch optimizer (``optimizer="lamb"``).
* :func:`layerwise_lr_multipliers`: layer-wise LR decay of spec 4.4.
* :func:`create_optimizer`: builds all of the above from the hparams.

How original names are attached: every model of this package has
``original_variables() -> {original name: variable}``. The optimizer takes such
a mapping (``original_variables=``, or :meth:`AdamWeightDecay.for_models`) and
keys it internally by the identity of the underlying TensorFlow variable (the
same key Keras uses for its slots, which also resolves distributed/mirrored
variables), so Keras paths never matter.

Distribution: create the optimizer inside ``strategy.scope()``. In a replica
context the gradients are summed over replicas *first* and then clipped, so a
MirroredStrategy step equals a one-device step on the same global batch.
"""

from __future__ import annotations

import re
import types
from typing import Iterable, Mapping, Optional, Sequence

import keras
import tensorflow as tf

from electra_tf.config import OPTIMIZERS as OPTIMIZER_NAMES

# Spec 4.2: weight decay is skipped for names matching any of these (regex search).
DEFAULT_EXCLUDE_FROM_WEIGHT_DECAY = ("LayerNorm", "layer_norm", "bias")


# ---------------------------------------------------------------------------
# Learning-rate schedule (spec 4.1)
# ---------------------------------------------------------------------------

@keras.saving.register_keras_serializable(package="electra_tf")
class WarmupPolynomialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Polynomial decay to 0 over ``num_train_steps``, multiplied by a linear warm-up.

    With t = number of updates already applied (``optimizer.iterations`` before
    the increment, so the first update has t = 0 and LR 0), T = num_train_steps
    and W = max(T * warmup_proportion, num_warmup_steps) (a float is fine)::

        decayed(t) = lr0 * (1 - min(t, T) / T) ** power
        lr(t)      = decayed(t) * min(1, t / W)       (W = 0: no warm-up factor)

    The warm-up multiplies the decayed value; it does not ramp to lr0 first.
    Computed in float32 like the original graph.
    """

    def __init__(self, learning_rate: float, num_train_steps: int, num_warmup_steps: float = 0,
                 warmup_proportion: float = 0.0, power: float = 1.0, name: Optional[str] = None):
        super().__init__()
        if num_train_steps <= 0:
            raise ValueError(f"num_train_steps must be positive, got {num_train_steps}")
        if learning_rate < 0:
            raise ValueError(f"learning_rate must be >= 0, got {learning_rate}")
        if num_warmup_steps < 0 or warmup_proportion < 0:
            raise ValueError("num_warmup_steps and warmup_proportion must be >= 0, got "
                             f"{num_warmup_steps} and {warmup_proportion}")
        self.learning_rate = float(learning_rate)
        self.num_train_steps = int(num_train_steps)
        self.num_warmup_steps = num_warmup_steps
        self.warmup_proportion = float(warmup_proportion)
        self.power = float(power)
        self.name = name

    @property
    def warmup_steps(self) -> float:
        """W = max(T * warmup_proportion, num_warmup_steps)."""
        return max(self.num_train_steps * self.warmup_proportion, self.num_warmup_steps)

    def __call__(self, step):
        with tf.name_scope(self.name or "WarmupPolynomialDecay"):
            t = tf.cast(step, tf.float32)
            total = tf.constant(self.num_train_steps, tf.float32)
            fraction = tf.minimum(t, total) / total
            lr = (tf.constant(self.learning_rate, tf.float32)
                  * tf.pow(1.0 - fraction, tf.constant(self.power, tf.float32)))
            warmup = self.warmup_steps
            if warmup > 0:
                lr = lr * tf.minimum(1.0, t / tf.constant(warmup, tf.float32))
            return lr

    def get_config(self):
        return {"learning_rate": self.learning_rate, "num_train_steps": self.num_train_steps,
                "num_warmup_steps": self.num_warmup_steps,
                "warmup_proportion": self.warmup_proportion, "power": self.power,
                "name": self.name}


# ---------------------------------------------------------------------------
# Layer-wise learning-rate decay (spec 4.4)
# ---------------------------------------------------------------------------

def layer_depths(num_layers: int, corrected: bool = False) -> dict:
    """``{name substring: exponent}``: a matching variable's multiplier is d ** exponent.

    Original (``corrected=False``, spec 4.4 incl. the top-layer quirk):
    embeddings n+2, ``encoder/layer_k`` n+1-k (top layer 2), ``task_specific`` 0.
    ``corrected=True``: the top layer gets d instead of d**2, i.e. layer_k n-k,
    embeddings n+1, task heads 0.
    """
    shift = 1 if corrected else 0
    exponents = {"/embeddings/": num_layers + 2 - shift,
                 "/embeddings_project/": num_layers + 2 - shift,
                 "task_specific/": 0}
    for k in range(num_layers):
        exponents[f"encoder/layer_{k}/"] = num_layers + 1 - k - shift
    return exponents


def layerwise_lr_multipliers(original_names: Iterable[str], num_layers: int, decay: float,
                             corrected: bool = False) -> dict:
    """Per-variable LR multipliers of spec 4.4, keyed by original name.

    The depth of a variable is found by substring match on its original name:
    ``/embeddings/`` and ``/embeddings_project/`` depth 0, ``encoder/layer_<k>/``
    depth k+1, ``task_specific/`` depth n+2; the multiplier is d ** (n+2-depth).
    Examples (original): base n=12 d=0.8 -> top layer 0.64, layer_0 ~0.0550,
    embeddings ~0.0440, task head 1.

    Args:
      original_names: names of all trained variables.
      num_layers: n, the number of transformer layers.
      decay: d; ``decay <= 0`` disables layer-wise decay (every multiplier 1.0).
      corrected: False (default) reproduces the original, where the top
        transformer layer gets d**2 (the depth n+1 once belonged to a pooler that
        no longer exists; kept by the author for reproducibility, GitHub issue
        #51). True gives the top layer d, layer_k d**(n-k) and embeddings d**(n+1).
    Raises:
      ValueError: a name matches no key, or keys of different depths.
    """
    names = list(original_names)
    if decay is None or decay <= 0:
        return {name: 1.0 for name in names}
    if num_layers is None or num_layers <= 0:
        raise ValueError(f"layer-wise LR decay needs num_layers > 0, got {num_layers}")
    exponents = layer_depths(num_layers, corrected)
    multipliers = {}
    for name in names:
        matched = {exponents[key] for key in exponents if key in name}
        if not matched:
            raise ValueError(
                f"no layer-wise learning rate for variable {name!r}: its name contains none of "
                "'/embeddings/', '/embeddings_project/', 'encoder/layer_<k>/' "
                f"(k < {num_layers}) or 'task_specific/' (spec 4.4)")
        if len(matched) > 1:
            keys = [key for key in exponents if key in name]
            raise ValueError(f"variable {name!r} matches several layer-wise keys {keys}")
        multipliers[name] = float(decay) ** matched.pop()
    return multipliers


# ---------------------------------------------------------------------------
# The optimizer (spec 4.2, 4.3)
# ---------------------------------------------------------------------------

def _merged_original_variables(models) -> dict:
    from electra_tf.checkpoints import original_variables
    return original_variables(*models)


@keras.saving.register_keras_serializable(package="electra_tf")
class AdamWeightDecay(keras.optimizers.Optimizer):
    """Adam with decoupled weight decay exactly as in the original ELECTRA/BERT (spec 4.2).

    Per variable θ with (clipped) gradient g::

        m <- b1*m + (1-b1)*g;  v <- b2*v + (1-b2)*g^2
        u  = m / (sqrt(v) + eps)            # no bias correction
        u += weight_decay_rate * θ          # unless the original name is excluded
        θ <- θ - lr * multiplier(θ) * u     # decay scaled by the (per-variable) LR

    Written here because ``keras.optimizers.AdamW`` differs: it bias-corrects
    the step (the original has no bias correction, epsilon is added to the raw
    sqrt(v)) and matches decay exclusions against Keras names, not original ones.

    Gradients are densified (the original's update is dense), summed over
    replicas under ``tf.distribute``, and then clipped to global norm
    ``clip_norm`` with ``tf.clip_by_global_norm`` over *all* gradients together
    (spec 4.3). Keras' own ``global_clipnorm`` is not used: it has the same
    formula but clips each replica's gradients before they are summed.

    Args:
      learning_rate: a float or a schedule (:class:`WarmupPolynomialDecay`),
        evaluated at ``iterations`` before the increment.
      weight_decay_rate: λ; 0 disables weight decay.
      beta_1, beta_2, epsilon: 0.9, 0.999, 1e-6 as in the original.
      exclude_from_weight_decay: regexes searched in the *original* name.
      original_variables: ``{original name: variable}`` (what the models'
        ``original_variables()`` return). Needed for every trained variable when
        weight decay or LR multipliers are used, and for slot export.
      lr_multipliers: ``{original name: float}``, default 1 for unlisted names
        (see :func:`layerwise_lr_multipliers`).
      clip_norm: global-norm clip; None or <= 0 disables (the original uses 1.0).
      **kwargs: other ``keras.optimizers.Optimizer`` arguments (name, ...).

    Slots are created lazily on the first ``apply_gradients`` or by
    ``optimizer.build(variables)``; call ``build`` before restoring a checkpoint
    into the slots or before a ``jit_compile=True`` train step.
    """

    def __init__(self, learning_rate=0.001, weight_decay_rate: float = 0.0,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-6,
                 exclude_from_weight_decay: Optional[Sequence[str]] = (
                     DEFAULT_EXCLUDE_FROM_WEIGHT_DECAY),
                 original_variables: Optional[Mapping] = None,
                 lr_multipliers: Optional[Mapping[str, float]] = None,
                 clip_norm: Optional[float] = None, name: str = "AdamWeightDecay",
                 settable_learning_rate: bool = False, **kwargs):
        for keras_arg, ours in (("weight_decay", "weight_decay_rate"),
                                ("global_clipnorm", "clip_norm"), ("clipnorm", "clip_norm"),
                                ("clipvalue", "clip_norm")):
            if kwargs.get(keras_arg) is not None:
                raise ValueError(f"AdamWeightDecay does not take Keras' {keras_arg!r}; use "
                                 f"{ours!r} (applied after the cross-replica sum, spec 4.3)")
            kwargs.pop(keras_arg, None)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        # Keras callbacks (LearningRateScheduler, ReduceLROnPlateau) set `learning_rate`; a
        # schedule is not settable in Keras, so a value set here overrides the schedule
        # from then on (negative: none set). Made before any step is traced.
        self.settable_learning_rate = bool(settable_learning_rate)
        self._learning_rate_override = None
        if self.settable_learning_rate and isinstance(
                self._learning_rate, keras.optimizers.schedules.LearningRateSchedule):
            with keras.name_scope(self.name, caller=self):
                self._learning_rate_override = keras.Variable(
                    -1.0, name="learning_rate_override", dtype="float32", trainable=False,
                    aggregation="only_first_replica")
            self._track_variable(self._learning_rate_override)
        self.weight_decay_rate = float(weight_decay_rate)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)
        self.exclude_from_weight_decay = tuple(exclude_from_weight_decay or ())
        self.clip_norm = float(clip_norm) if clip_norm and clip_norm > 0 else None
        self.lr_multipliers = types.MappingProxyType(
            {str(k): float(v) for k, v in (lr_multipliers or {}).items()})
        names_by_key = {}
        for original_name, variable in (original_variables or {}).items():
            key = self._var_key(variable)
            if names_by_key.get(key, original_name) != original_name:
                raise ValueError(f"one variable has two original names: "
                                 f"{names_by_key[key]!r} and {original_name!r}")
            names_by_key[key] = original_name
        unknown = sorted(set(self.lr_multipliers) - set(names_by_key.values()))
        if unknown:
            raise ValueError(f"lr_multipliers name variables that original_variables lacks: "
                             f"{unknown[:5]}{' ...' if len(unknown) > 5 else ''}")
        # Plain (untracked) metadata: a dict of variables here would make Keras
        # track the model's weights as optimizer variables.
        self._names_by_key = types.MappingProxyType(names_by_key)
        self._slot_names: tuple = ()
        self._use_decay: tuple = ()
        self._multipliers: tuple = ()

    @classmethod
    def for_models(cls, *models, **kwargs) -> "AdamWeightDecay":
        """An optimizer whose names come from the models' ``original_variables()``."""
        return cls(original_variables=_merged_original_variables(models), **kwargs)

    # -- the learning rate ----------------------------------------------------

    @property
    def learning_rate(self):
        return self._get_current_learning_rate()

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        override = getattr(self, "_learning_rate_override", None)
        if override is None or isinstance(
                learning_rate, keras.optimizers.schedules.LearningRateSchedule) or callable(
                learning_rate):
            keras.optimizers.Optimizer.learning_rate.fset(self, learning_rate)
        else:
            override.assign(float(learning_rate))

    def _get_current_learning_rate(self):
        scheduled = super()._get_current_learning_rate()
        override = getattr(self, "_learning_rate_override", None)
        if override is None:
            return scheduled
        return tf.where(override >= 0.0, tf.convert_to_tensor(override),
                        tf.cast(scheduled, tf.float32))

    # -- names --------------------------------------------------------------

    def original_name(self, variable) -> Optional[str]:
        """The original name attached to a variable, or None."""
        return self._names_by_key.get(self._var_key(variable))

    def _do_use_weight_decay(self, original_name: str) -> bool:
        if not self.weight_decay_rate:
            return False
        return not any(re.search(p, original_name) for p in self.exclude_from_weight_decay)

    @property
    def built_variables(self) -> list:
        """The variables the optimizer was built on (apply gradients for these)."""
        return list(self._trainable_variables)

    # -- Keras hooks ----------------------------------------------------------

    def build(self, variables):
        if self.built:
            return
        variables = list(variables)
        keys = [self._var_key(v) for v in variables]
        if len(set(keys)) != len(keys):
            twice = sorted({_keras_path(v) for v, k in zip(variables, keys) if keys.count(k) > 1})
            raise ValueError(f"variables listed more than once (shared weights?): {twice[:5]}; "
                             "build on a de-duplicated list (e.g. create_optimizer's "
                             "built_variables)")
        names = [self.original_name(v) for v in variables]
        if self.weight_decay_rate or self.lr_multipliers:
            unnamed = [_keras_path(v) for v, n in zip(variables, names) if n is None]
            if unnamed:
                raise ValueError(
                    "AdamWeightDecay decides weight decay and learning-rate multipliers by "
                    "original (TF1) variable name, but these variables have none: "
                    f"{unnamed[:5]}{' ...' if len(unnamed) > 5 else ''}; pass them in "
                    "original_variables= (e.g. AdamWeightDecay.for_models(*models))")
        super().build(variables)
        self._adam_m, self._adam_v = self.add_optimizer_variables(variables, ["adam_m", "adam_v"])
        self._slot_names = tuple(names)
        self._use_decay = tuple(n is not None and self._do_use_weight_decay(n) for n in names)
        self._multipliers = tuple(self.lr_multipliers.get(n, 1.0) if n else 1.0 for n in names)

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        # Keras clips in `apply` before this hook, i.e. per replica; we sum over
        # replicas first and clip the global gradient, as one device would.
        grads = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g
                 for g in grads]
        variables = [v.value if isinstance(v, keras.Variable) else v for v in trainable_variables]
        context = tf.distribute.get_replica_context()
        if context is not None and tf.distribute.has_strategy():
            grads = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
        if self.clip_norm:
            grads, _ = tf.clip_by_global_norm(grads, self.clip_norm)

        def update_all(strategy, grads, variables, learning_rate):
            for g, v in zip(grads, variables):
                strategy.extended.update(v, self._update_one, args=(g, learning_rate),
                                         group=False)

        if context is None:
            update_all(tf.distribute.get_strategy(), grads, variables, learning_rate)
        else:
            context.merge_call(update_all, args=(grads, variables, learning_rate))

    def _update_one(self, variable, gradient, learning_rate):
        return self.update_step(gradient, variable, learning_rate)

    def _moments(self, gradient, variable, learning_rate):
        """(index, per-variable LR, next m, next v) of one variable's update."""
        index = self._get_variable_index(variable)
        dtype = variable.dtype
        lr = tf.cast(learning_rate, dtype)
        if self._multipliers[index] != 1.0:
            lr = lr * tf.constant(self._multipliers[index], dtype)
        g = tf.cast(tf.convert_to_tensor(gradient), dtype)
        next_m = self.beta_1 * tf.convert_to_tensor(self._adam_m[index]) + (1.0 - self.beta_1) * g
        next_v = (self.beta_2 * tf.convert_to_tensor(self._adam_v[index])
                  + (1.0 - self.beta_2) * tf.square(g))
        return index, lr, next_m, next_v

    def _apply(self, variable, index, lr, update, next_m, next_v):
        self.assign(variable, tf.convert_to_tensor(variable) - lr * update)
        self.assign(self._adam_m[index], next_m)
        self.assign(self._adam_v[index], next_v)

    def update_step(self, gradient, variable, learning_rate):
        index, lr, next_m, next_v = self._moments(gradient, variable, learning_rate)
        update = next_m / (tf.sqrt(next_v) + self.epsilon)
        if self._use_decay[index]:
            update += self.weight_decay_rate * tf.convert_to_tensor(variable)
        self._apply(variable, index, lr, update, next_m, next_v)

    def get_config(self):
        config = super().get_config()
        for key in ("weight_decay", "clipnorm", "global_clipnorm", "clipvalue"):
            config.pop(key, None)
        config.update(weight_decay_rate=self.weight_decay_rate, beta_1=self.beta_1,
                      beta_2=self.beta_2, epsilon=self.epsilon,
                      exclude_from_weight_decay=list(self.exclude_from_weight_decay),
                      clip_norm=self.clip_norm,
                      settable_learning_rate=self.settable_learning_rate)
        # original_variables (and lr_multipliers, keyed by those names) are not
        # serialised: a restored config gives an optimizer without names.
        return config

    # -- original-name slots ---------------------------------------------------

    def _require_built(self, what: str):
        if not self.built:
            raise ValueError(f"{what} needs the optimizer's slots: call "
                             "optimizer.build(variables) (or apply one step) first")

    def slots_by_original_name(self) -> dict:
        """``{original name: (m, v)}``: the two moment slots of every built variable.

        :func:`electra_tf.formats.tf1.slot_variables` names them as checkpoints do.
        """
        self._require_built("the slots by original name")
        unnamed = [_keras_path(v) for v, n in zip(self._trainable_variables, self._slot_names)
                   if n is None]
        if unnamed:
            raise ValueError(f"cannot export slots under original names: variables without "
                             f"an original name: {unnamed[:5]}")
        return {name: (m, v) for name, m, v in zip(self._slot_names, self._adam_m, self._adam_v)}


class Lamb(AdamWeightDecay):
    """LAMB (You et al., 2020): Adam with a per-variable trust ratio, for large batches.

    The optional optimizer of NVIDIA's ELECTRA recipe; AdamWeightDecay stays the
    default. Per variable θ at update t = iterations + 1::

        m <- b1*m + (1-b1)*g;  v <- b2*v + (1-b2)*g^2
        r  = (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)   # bias_correction=False: m, v
        r += weight_decay_rate * θ                              # unless excluded (as AdamW)
        ratio = ||θ|| / ||r||  if both norms > 0 else 1        # 1 for layer-adaptation exclusions
        θ <- θ - lr * multiplier(θ) * ratio * r

    Written here because ``keras.optimizers.Lamb`` applies weight decay outside
    the trust ratio and cannot exclude variables by original name. Clipping,
    replica summation, names and slots (exported as ``adam_m``/``adam_v``) are
    those of :class:`AdamWeightDecay`.

    Args:
      exclude_from_layer_adaptation: regexes of original names whose trust ratio
        is 1; ``None`` means the weight-decay exclusions (LayerNorm, biases).
      bias_correction: divide m and v by (1 - b^t) as in the LAMB paper.
      Others: as :class:`AdamWeightDecay`.
    """

    def __init__(self, learning_rate=0.001, *args,
                 exclude_from_layer_adaptation: Optional[Sequence[str]] = None,
                 bias_correction: bool = True, name: str = "Lamb", **kwargs):
        super().__init__(learning_rate, *args, name=name, **kwargs)
        self.exclude_from_layer_adaptation = tuple(
            self.exclude_from_weight_decay if exclude_from_layer_adaptation is None
            else exclude_from_layer_adaptation)
        self.bias_correction = bool(bias_correction)
        self._adapt: tuple = ()

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._adapt = tuple(
            n is None or not any(re.search(p, n) for p in self.exclude_from_layer_adaptation)
            for n in self._slot_names)

    def update_step(self, gradient, variable, learning_rate):
        index, lr, next_m, next_v = self._moments(gradient, variable, learning_rate)
        dtype = variable.dtype
        m_hat, v_hat = next_m, next_v
        if self.bias_correction:
            t = tf.cast(self.iterations + 1, dtype)
            m_hat = next_m / (1.0 - tf.pow(tf.constant(self.beta_1, dtype), t))
            v_hat = next_v / (1.0 - tf.pow(tf.constant(self.beta_2, dtype), t))
        update = m_hat / (tf.sqrt(v_hat) + self.epsilon)
        theta = tf.convert_to_tensor(variable)
        if self._use_decay[index]:
            update += self.weight_decay_rate * theta
        if self._adapt[index]:
            w_norm, u_norm = tf.norm(theta), tf.norm(update)
            ratio = tf.where((w_norm > 0) & (u_norm > 0), w_norm / tf.maximum(u_norm, 1e-30),
                             tf.ones_like(w_norm))
            update = ratio * update
        self._apply(variable, index, lr, update, next_m, next_v)

    def get_config(self):
        config = super().get_config()
        config.update(exclude_from_layer_adaptation=list(self.exclude_from_layer_adaptation),
                      bias_correction=self.bias_correction)
        return config


# The names are config.OPTIMIZERS (the one list the flags and configs check), in its order.
OPTIMIZERS = dict(zip(OPTIMIZER_NAMES, (AdamWeightDecay, Lamb), strict=True))


def _keras_path(variable) -> str:
    return getattr(variable, "path", None) or getattr(variable, "name", repr(variable))


# ---------------------------------------------------------------------------
# Convenience
# ---------------------------------------------------------------------------

def with_loss_scaling(optimizer: AdamWeightDecay, mixed_precision: Optional[str]):
    """The optimizer to apply gradients with: under float16, wrapped in dynamic loss scaling.

    The wrapper's scale variables are built at once (before any tf.function traces it).
    """
    if mixed_precision != "float16":
        return optimizer
    scaled = keras.optimizers.LossScaleOptimizer(optimizer)
    scaled.build(optimizer.built_variables)
    return scaled


def finetuning_optimizer_arguments(config, num_train_steps: int, num_layers: int) -> dict:
    """The :func:`create_optimizer` keywords of fine-tuning (spec 6.3) from a
    ``FinetuningConfig``: linear warm-up over ``warmup_proportion`` of the updates, weight
    decay, layer-wise LR decay over ``num_layers`` layers. The drivers and the Keras task
    models (``electra_tf.models``) both use it, so they train alike."""
    return dict(learning_rate=config.learning_rate, num_train_steps=num_train_steps,
                warmup_proportion=config.warmup_proportion,
                weight_decay_rate=config.weight_decay_rate,
                layerwise_lr_decay=config.layerwise_lr_decay,
                corrected_layerwise=config.layerwise_lr_decay_corrected,
                num_layers=num_layers, optimizer=config.optimizer)


def create_optimizer(models, learning_rate: float, num_train_steps: int,
                     num_warmup_steps: float = 0, warmup_proportion: float = 0.0,
                     lr_decay_power: float = 1.0, weight_decay_rate: float = 0.0,
                     layerwise_lr_decay: float = 0.0, num_layers: Optional[int] = None,
                     clip_norm: float = 1.0, corrected_layerwise: bool = False,
                     build: bool = True, optimizer: str = "adamw", **kwargs) -> AdamWeightDecay:
    """The original's optimizer set-up (spec 4) for some models.

    Args:
      models: a model with ``original_variables()`` (e.g. ``PretrainingModels``,
        a ``Discriminator``, a fine-tuning model), a sequence of them, or an
        explicit ``{original name: variable}`` mapping.
      learning_rate, num_train_steps, num_warmup_steps, warmup_proportion,
        lr_decay_power: the schedule (spec 4.1). Pre-training passes
        num_warmup_steps (10000) and warmup_proportion 0; fine-tuning passes
        warmup_proportion (0.1) and num_warmup_steps 0.
      weight_decay_rate: λ of spec 4.2 (0.01 in both drivers).
      layerwise_lr_decay: d of spec 4.4; <= 0 disables (pre-training).
      num_layers: n transformer layers (needed when layerwise_lr_decay > 0).
      clip_norm: global-norm clip (1.0 in the original).
      corrected_layerwise: see :func:`layerwise_lr_multipliers`.
      optimizer: ``"adamw"`` (the original :class:`AdamWeightDecay`) or ``"lamb"``.
      build: build the slots now on the trainable named variables (recommended:
        slots then exist before tracing a (jit-compiled) train step or restoring
        a checkpoint). ``optimizer.built_variables`` lists them; compute the
        gradients for that list.
      **kwargs: passed to :class:`AdamWeightDecay` (e.g. ``name``).
    """
    if isinstance(models, Mapping):
        named = dict(models)
    elif hasattr(models, "original_variables"):
        named = _merged_original_variables([models])
    else:
        named = _merged_original_variables(list(models))
    trainable = {n: v for n, v in named.items() if getattr(v, "trainable", True)}
    multipliers = {}
    if layerwise_lr_decay and layerwise_lr_decay > 0:
        multipliers = layerwise_lr_multipliers(trainable, num_layers, layerwise_lr_decay,
                                               corrected=corrected_layerwise)
    schedule = WarmupPolynomialDecay(learning_rate, num_train_steps,
                                     num_warmup_steps=num_warmup_steps,
                                     warmup_proportion=warmup_proportion, power=lr_decay_power)
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {sorted(OPTIMIZERS)}")
    result = OPTIMIZERS[optimizer](learning_rate=schedule, weight_decay_rate=weight_decay_rate,
                                   original_variables=named, lr_multipliers=multipliers,
                                   clip_norm=clip_norm, **kwargs)
    if build:
        result.build(list(trainable.values()))
    return result
