"""What the task models share: backbone + head, preprocessing of strings, compile defaults."""

from __future__ import annotations

import math
import types
from typing import Mapping, Optional, Union

import keras
import tensorflow as tf

from electra_tf.models.backbone import ElectraBackbone, assign_weights, read_pretrained
from electra_tf.models.preprocessor import DEFAULT_SEQUENCE_LENGTH, ElectraPreprocessor


class ElectraTask(keras.Model):
    """A backbone and one fine-tuning head (``self.head``, named ``task_specific/<task>/``).

    Subclasses make the head in ``__init__`` and map the backbone's outputs through it in
    ``call``. Inputs of ``fit``/``evaluate``/``predict`` are either features (a dict with
    ``input_ids``, ``input_mask``, ``segment_ids`` int [B, L]) or texts, which the attached
    ``preprocessor`` turns into features (see :class:`ElectraPreprocessor` for the forms,
    pairs included; in a ``tf.data.Dataset`` a pair is ``((text_a, text_b), label)``).

    ``original_variables()`` names every weight as the fine-tuning model does, so
    ``checkpoints.save_original_checkpoint(prefix, model)`` and ``run_finetuning.py``'s
    checkpoints move both ways (the head's task name must match).
    """

    def __init__(self, backbone: ElectraBackbone, task_name: str,
                 preprocessor: Optional[ElectraPreprocessor] = None, **kwargs):
        kwargs.setdefault("autocast", False)  # float targets stay float32, as fine-tuning's
        super().__init__(**kwargs)
        self.backbone = backbone
        self.task_name = task_name
        self.preprocessor = preprocessor
        # compile()'s arguments while the number of updates is unknown (until fit); in a
        # namespace, which Keras does not track as state of the (built) model.
        self._pending_compile: Optional[types.SimpleNamespace] = None

    # -- weights --------------------------------------------------------------------

    def build(self, input_shape=None):
        self.backbone.build()
        self.head.build((None, None, self.backbone.hidden_size))
        super().build(input_shape)

    def original_variables(self) -> dict:
        """``{original (TF1) name: variable}`` of the encoder and the head."""
        return {**self.backbone.original_variables(), **self.head.original_variables()}

    @classmethod
    def from_pretrained(cls, path, *, preprocessor: Union[bool, ElectraPreprocessor] = True,
                        sequence_length: int = DEFAULT_SEQUENCE_LENGTH, hparams=None,
                        **task_kwargs) -> "ElectraTask":
        """The task model on a pre-trained encoder (its head initialised as fine-tuning's).

        Args:
          path: anything ``loading.read_weights`` reads (see
            :meth:`ElectraBackbone.from_pretrained`). A fine-tuned checkpoint whose head
            has this model's ``task_name`` gives the head too.
          preprocessor: True: an :class:`ElectraPreprocessor` of the checkpoint's vocab at
            ``sequence_length``; False: none (features in only); or one to attach.
          hparams: PretrainingConfig overrides for the encoder (e.g. dropout).
          **task_kwargs: the task model's own arguments (``num_classes``, ...).

        The weights are read before any layer is made and the layers are made and built in
        the fine-tuning model's order, so a seed set before this call
        (``keras.utils.set_random_seed(seed + trial)``) gives the head and the dropout
        streams of ``run_finetuning``'s trial, when reading draws no random numbers (TF1,
        transformers and keras-format checkpoints do not; a run directory is read by
        restoring its models, which do).
        """
        weights = read_pretrained(path)
        backbone = ElectraBackbone.for_weights(weights, hparams)
        if preprocessor is True:
            preprocessor = ElectraPreprocessor.from_pretrained(weights, sequence_length)
        model = cls(backbone, preprocessor=preprocessor or None, **task_kwargs)
        model.build()  # the encoder, then the head: fine-tuning's order of initial draws
        assign_weights(weights, model)
        return model

    def _run_head(self, encoded: Mapping[str, tf.Tensor], features: Mapping[str, tf.Tensor],
                  placeholders: Mapping[str, tf.Tensor], training) -> dict:
        """The fine-tuning head on ``encoded[head.encoder_output]``, its outputs without the
        ``<task>_`` prefix.

        The heads compute fine-tuning's loss from labels in the features; ``placeholders``
        stand in for labels that ``features`` lack (``<task>_<name>`` or ``<name>``).
        """
        prefix = f"{self.task_name}_"
        inputs = dict(features)
        for name, value in placeholders.items():
            inputs[prefix + name] = features.get(prefix + name, features.get(name, value))
        out = self.head(encoded[self.head.encoder_output], inputs, training=training)
        return {k[len(prefix):]: v for k, v in out.items() if k.startswith(prefix)}

    # -- compile ------------------------------------------------------------------

    def default_loss(self):
        """The fine-tuning loss, summed over the batch as the original (not a mean)."""
        raise NotImplementedError

    def default_metrics(self) -> list:
        return []

    def finetuning_config(self, finetuning_config=None):
        """A FinetuningConfig: the given one, or the defaults of the backbone's size preset
        (and of this model's task name) updated by hparams (dict, JSON or .json path)."""
        from electra_tf.config import FinetuningConfig
        if isinstance(finetuning_config, FinetuningConfig):
            return finetuning_config
        return FinetuningConfig.from_preset(self.backbone.model_size, [self.task_name],
                                            finetuning_config)

    def electra_optimizer(self, finetuning_config, num_train_steps: int):
        """The fine-tuning optimizer of the project (AdamWeightDecay or LAMB, linear warm-up
        and decay, weight decay, layer-wise LR decay, global-norm clipping 1.0)."""
        from electra_tf.optimization import create_optimizer, finetuning_optimizer_arguments
        if not self.built:
            self.build()
        return create_optimizer(self, **finetuning_optimizer_arguments(
            finetuning_config, num_train_steps, self.backbone.config.num_hidden_layers))

    def compile(self, optimizer="auto", loss="auto", metrics="auto", *,
                finetuning_config=None, num_train_steps: Optional[int] = None, **kwargs):
        """``compile()`` with no arguments gives fine-tuning's settings.

        Args:
          optimizer: "auto": :meth:`electra_optimizer` with the learning rate, warm-up,
            weight decay and layer-wise decay of ``finetuning_config``; its schedule needs
            the number of updates: ``num_train_steps``, else counted at the next ``fit``
            (epochs x steps per epoch). Any Keras optimizer works too.
          loss, metrics: "auto": :meth:`default_loss` / :meth:`default_metrics`; or any
            Keras loss / metrics.
          finetuning_config: a FinetuningConfig or its hparams (dict, JSON, .json path);
            default: the backbone size's preset.
          **kwargs: other ``keras.Model.compile`` arguments. ``jit_compile`` defaults to
            the drivers' rule (XLA on one GPU or TPU; on CPUs only in bfloat16/float16).
        """
        if kwargs.get("jit_compile", "auto") == "auto":
            from electra_tf.training.strategy import xla_is_default
            kwargs["jit_compile"] = xla_is_default(
                tf.distribute.get_strategy(), keras.mixed_precision.global_policy().compute_dtype)
        config = self.finetuning_config(finetuning_config)
        if isinstance(optimizer, str) and optimizer == "auto":
            self._pending_compile = None
            if num_train_steps is None:
                # Known at fit: a placeholder lets evaluate/predict run before it.
                self._pending_compile = types.SimpleNamespace(kwargs=dict(
                    loss=loss, metrics=metrics, finetuning_config=config, **kwargs))
                num_train_steps = 1
            optimizer = self.electra_optimizer(config, num_train_steps)
        else:
            self._pending_compile = None
        if isinstance(loss, str) and loss == "auto":
            loss = self.default_loss()
        if isinstance(metrics, str) and metrics == "auto":
            metrics = self.default_metrics()
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    # -- fit / evaluate / predict on texts or features -----------------------------------

    def fit(self, x=None, y=None, batch_size=None, epochs=1, sample_weight=None,
            steps_per_epoch=None, validation_data=None, validation_split=0.0, **kwargs):
        x, y, sample_weight = self._features(x, y, sample_weight)
        if validation_data is not None:
            validation_data = self._validation_features(validation_data)
        if self._pending_compile is not None:
            per_epoch = steps_per_epoch or _steps_per_epoch(x, batch_size, validation_split)
            pending = self._pending_compile.kwargs
            with self.distribute_strategy.scope():  # the optimizer's slots beside the weights
                self.compile(num_train_steps=int(per_epoch * (epochs - kwargs.get(
                    "initial_epoch", 0))), **pending)
        return super().fit(x, y, batch_size=batch_size, epochs=epochs,
                           sample_weight=sample_weight, steps_per_epoch=steps_per_epoch,
                           validation_data=validation_data, validation_split=validation_split,
                           **kwargs)

    def evaluate(self, x=None, y=None, batch_size=None, sample_weight=None, **kwargs):
        x, y, sample_weight = self._features(x, y, sample_weight)
        return super().evaluate(x, y, batch_size=batch_size, sample_weight=sample_weight,
                                **kwargs)

    def predict(self, x, batch_size=None, **kwargs):
        x, _, _ = self._features(x, None, None)
        return super().predict(x, batch_size=batch_size, **kwargs)

    def _features(self, x, y, sample_weight):
        """Texts -> features through the preprocessor; features pass as they are."""
        if isinstance(x, tf.data.Dataset):
            spec = x.element_spec
            first = spec[0] if isinstance(spec, tuple) else spec
            if isinstance(first, Mapping):
                return x, y, sample_weight
            preprocessor = self._require_preprocessor()
            return (x.map(lambda *element: preprocessor(*element),
                          num_parallel_calls=tf.data.AUTOTUNE), y, sample_weight)
        if x is None or isinstance(x, Mapping):
            return x, y, sample_weight
        features = self._require_preprocessor()(_as_batch(x))
        return features, y, sample_weight

    def _validation_features(self, data):
        if isinstance(data, tf.data.Dataset):
            return self._features(data, None, None)[0]
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(tuple(data))
        return keras.utils.pack_x_y_sample_weight(*self._features(x, y, sample_weight))

    def _require_preprocessor(self) -> ElectraPreprocessor:
        if self.preprocessor is None:
            raise ValueError(f"{type(self).__name__} got texts but has no preprocessor: build "
                             "it with from_pretrained(path, preprocessor=True) or pass features "
                             "(input_ids, input_mask, segment_ids)")
        return self.preprocessor


def _as_batch(x):
    """A single text (or pair of texts) as a batch of one; batches unchanged."""
    if isinstance(x, tuple):
        return tuple(_as_batch(s) for s in x)
    return [x] if isinstance(x, (str, bytes)) else x


def _steps_per_epoch(x, batch_size, validation_split) -> int:
    """Updates per epoch of ``fit``'s data, for the learning-rate schedule."""
    if isinstance(x, tf.data.Dataset):
        n = int(x.cardinality())
        if n < 0:
            raise ValueError("compile() without num_train_steps counts the updates at fit, but "
                             "this dataset's length is unknown or infinite: pass "
                             "steps_per_epoch= to fit, or num_train_steps= to compile")
        return n
    n = len(next(iter(x.values())) if isinstance(x, Mapping) else x)
    n = int(n * (1.0 - validation_split))
    return max(1, math.ceil(n / (batch_size or 32)))
