"""What the task models share: backbone + head, preprocessing of strings, compile defaults,
saving and serving."""

from __future__ import annotations

import math
import types
import warnings
from typing import Mapping, Optional, Union

import keras
import numpy as np
import tensorflow as tf

from electra_tf.models.backbone import ElectraBackbone, assign_weights, read_pretrained
from electra_tf.models.preprocessor import (DEFAULT_SEQUENCE_LENGTH, FEATURE_NAMES,
                                            ElectraPreprocessor)

# Feature keys of the fine-tuning pipeline that the task models accept besides
# FEATURE_NAMES and the ``<task>_...`` keys of their own task.
_PIPELINE_KEYS = ("task_id",)


class ScheduleEndedError(ValueError):
    """A ``fit`` after the end of compile()'s learning-rate schedule (it would train at 0)."""


class ElectraTask(keras.Model):
    """A backbone and one fine-tuning head (``self.head``, named ``task_specific/<task>/``).

    Subclasses make the head in ``__init__`` and map the backbone's outputs through it in
    ``call``. Inputs of ``fit``/``evaluate``/``predict`` and ``*_on_batch`` are either
    features (a dict with ``input_ids``, ``input_mask``, ``segment_ids`` int [B, L]) or
    texts, which the attached ``preprocessor`` turns into features (see
    :class:`ElectraPreprocessor` for the forms, pairs included; in a ``tf.data.Dataset`` a
    pair is ``((text_a, text_b), label)``). Calling the model itself takes features only.

    Saving: ``model.save("x.keras")`` stores the backbone, head, preprocessor (vocabulary
    included), weights and compile state; ``keras.models.load_model("x.keras")`` needs no
    ``custom_objects``. ``model.export(path)`` writes a SavedModel serving raw strings
    (``serve(text)`` and, for text pairs, ``serve_pair(text_a, text_b)``) and features
    (``serve_features``), with tokenization in the graph.

    ``original_variables()`` names every weight as the fine-tuning model does, so
    ``electra_tf.formats.tf1.save_original_checkpoint(prefix, model)`` and ``run_finetuning.py``'s
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
        # compile("auto") arguments, for the saved compile state (a namespace: untracked).
        self._auto_compile = types.SimpleNamespace(config=None)
        # True with the default loss: losses are batch sums (the original's updates),
        # shown per example.
        self._sums_over_batch = False

    # -- configuration and saving ---------------------------------------------------

    def _task_config(self) -> dict:
        """The subclass's own constructor arguments (besides backbone and preprocessor)."""
        return {"task_name": self.task_name}

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                "dtype": keras.saving.serialize_keras_object(self.dtype_policy),
                "backbone": keras.saving.serialize_keras_object(self.backbone),
                "preprocessor": (None if self.preprocessor is None else
                                 keras.saving.serialize_keras_object(self.preprocessor)),
                **self._task_config()}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        if config.get("preprocessor") is not None:
            config["preprocessor"] = keras.saving.deserialize_keras_object(
                config["preprocessor"])
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.saving.deserialize_keras_object(config["dtype"])
        return cls(**config)

    def get_compile_config(self):
        if self._auto_compile.config is not None:
            return {"electra_tf_auto": self._auto_compile.config}
        return super().get_compile_config()

    def compile_from_config(self, config):
        """Re-compiles a loaded model as it was (fine-tuning's optimizer, names and all)."""
        if "electra_tf_auto" not in config:
            config = keras.saving.deserialize_keras_object(config)
            self.compile(**config)
        else:
            from electra_tf.config import FinetuningConfig
            auto = dict(config["electra_tf_auto"])
            auto["finetuning_config"] = FinetuningConfig.from_dict(auto["finetuning_config"])
            for key in ("loss", "metrics"):
                if auto.get(key) != "auto":
                    auto[key] = keras.saving.deserialize_keras_object(auto[key])
            self.compile(**auto)
        if self.built and self.optimizer is not None:
            self.optimizer.build(self.trainable_variables)

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
                        vocabulary=None, **task_kwargs) -> "ElectraTask":
        """The task model on a pre-trained encoder (its head initialised as fine-tuning's).

        Args:
          path: anything ``loading.read_weights`` reads (see
            :meth:`ElectraBackbone.from_pretrained`), a released model's name included. A
            fine-tuned checkpoint whose head has this model's ``task_name`` gives the head
            too.
          preprocessor: True: an :class:`ElectraPreprocessor` of the checkpoint's vocab at
            ``sequence_length``; False: none (features in only); or one to attach.
          hparams: PretrainingConfig overrides for the encoder (e.g. dropout).
          vocabulary: the vocab (path or tokens) for a checkpoint stored without one.
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
            preprocessor = ElectraPreprocessor.from_pretrained(weights, sequence_length,
                                                               vocabulary=vocabulary)
        model = cls(backbone, preprocessor=preprocessor or None, **task_kwargs)
        model.build()  # the encoder, then the head: fine-tuning's order of initial draws
        assign_weights(weights, model)
        return model

    @classmethod
    def from_preset(cls, preset, **kwargs) -> "ElectraTask":
        """keras-hub's name for :meth:`from_pretrained` (same arguments): ``preset`` is a
        released model's name (``electra_small_discriminator``, keras-hub's
        ``..._uncased_en`` or ``google/electra-...``; see :mod:`electra_tf.presets`), a
        keras-hub preset directory or any path :meth:`from_pretrained` reads."""
        return cls.from_pretrained(preset, **kwargs)

    def _run_head(self, encoded: Mapping[str, tf.Tensor], features: Mapping[str, tf.Tensor],
                  placeholders: Mapping[str, tf.Tensor], training) -> dict:
        """The fine-tuning head on ``encoded[head.encoder_output]``, its outputs without the
        ``<task>_`` prefix, floating outputs in float32.

        The heads compute fine-tuning's loss from labels in the features; ``placeholders``
        stand in for labels that ``features`` lack (``<task>_<name>`` or ``<name>``).
        """
        prefix = f"{self.task_name}_"
        inputs = dict(features)
        for name, value in placeholders.items():
            inputs[prefix + name] = features.get(prefix + name, features.get(name, value))
        out = self.head(encoded[self.head.encoder_output], inputs, training=training)
        return {k[len(prefix):]: (tf.cast(v, tf.float32) if v.dtype.is_floating else v)
                for k, v in out.items() if k.startswith(prefix)}

    # -- inputs ---------------------------------------------------------------------

    def _accepted_keys(self) -> tuple:
        """Feature keys besides FEATURE_NAMES and ``<task>_...`` (the subclass's extras)."""
        return _PIPELINE_KEYS

    def __call__(self, *args, **kwargs):
        if args:
            self._check_features(args[0])
        return super().__call__(*args, **kwargs)

    def _check_features(self, x) -> None:
        """One clear error for inputs that are not this model's features."""
        kind = type(self).__name__
        if isinstance(x, Mapping):
            unknown = sorted(k for k in x if k not in FEATURE_NAMES
                             and k not in self._accepted_keys()
                             and not str(k).startswith(f"{self.task_name}_"))
            if unknown or "input_ids" not in x:
                expected = ", ".join(FEATURE_NAMES + self._accepted_keys())
                raise ValueError(
                    f"{kind} takes the features {expected} (int [B, L])"
                    + (f"; got unknown key(s) {', '.join(map(str, unknown))}" if unknown
                       else "; input_ids is missing")
                    + (" (keras-hub's token_ids/padding_mask are input_ids/input_mask here)"
                       if {"token_ids", "padding_mask"} & set(x) else ""))
            return
        if _is_text(x):
            raise ValueError(
                f"{kind} is called on features, not texts: use model.predict(texts) (or "
                "predict_on_batch), or model(model.preprocessor(texts)) inside your own code")
        if not isinstance(x, keras.KerasTensor):
            raise ValueError(f"{kind} takes a dict of features ({', '.join(FEATURE_NAMES)}), "
                             f"got {type(x).__name__}")

    # -- compile ------------------------------------------------------------------

    def default_loss(self):
        """The fine-tuning loss, summed over the batch as the original (shown per example)."""
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
        and decay, weight decay, layer-wise LR decay, global-norm clipping 1.0), its
        learning rate settable by Keras callbacks (a set value replaces the schedule)."""
        from electra_tf.optimization import create_optimizer, finetuning_optimizer_arguments
        if not self.built:
            self.build()
        return create_optimizer(self, settable_learning_rate=True,
                                **finetuning_optimizer_arguments(
                                    finetuning_config, num_train_steps,
                                    self.backbone.config.num_hidden_layers))

    def compile(self, optimizer="auto", loss="auto", metrics="auto", *,
                finetuning_config=None, num_train_steps: Optional[int] = None, **kwargs):
        """``compile()`` with no arguments gives fine-tuning's settings.

        Args:
          optimizer: "auto": :meth:`electra_optimizer` with the learning rate, warm-up,
            weight decay and layer-wise decay of ``finetuning_config``; its schedule spans
            ``num_train_steps`` updates, else the updates of the next ``fit`` (epochs x
            steps per epoch). Later ``fit`` calls continue the same schedule; one that
            starts after its end is an error (:class:`ScheduleEndedError`: compile again
            for a new schedule), one that runs past it warns. Keras callbacks may set the
            learning rate (it then replaces the schedule). Any Keras optimizer works too.
          loss, metrics: "auto": :meth:`default_loss` / :meth:`default_metrics`; or any
            Keras loss / metrics. The "auto" loss updates with fine-tuning's batch sum (the
            original's gradients) and is shown per example, as Keras losses are.
          finetuning_config: a FinetuningConfig or its hparams (dict, JSON, .json path);
            default: the backbone size's preset.
          **kwargs: other ``keras.Model.compile`` arguments. ``jit_compile`` defaults to
            the drivers' rule (``training.strategy.xla_is_default``).
        """
        if kwargs.get("jit_compile", "auto") == "auto":
            from electra_tf.training.strategy import xla_is_default
            kwargs["jit_compile"] = xla_is_default(
                tf.distribute.get_strategy(), keras.mixed_precision.global_policy().compute_dtype)
        config = self.finetuning_config(finetuning_config)
        auto_optimizer = isinstance(optimizer, str) and optimizer == "auto"
        self._pending_compile = None
        if auto_optimizer:
            if num_train_steps is None:
                # Known at fit: a placeholder lets evaluate/predict run before it.
                self._pending_compile = types.SimpleNamespace(kwargs=dict(
                    loss=loss, metrics=metrics, finetuning_config=config, **kwargs))
            optimizer = self.electra_optimizer(config, num_train_steps or 1)
            self._auto_compile.config = {
                "finetuning_config": config.to_dict(), "num_train_steps": num_train_steps,
                "loss": loss if isinstance(loss, str) else
                keras.saving.serialize_keras_object(loss),
                "metrics": metrics if isinstance(metrics, str) else
                keras.saving.serialize_keras_object(metrics), **kwargs}
        else:
            self._auto_compile.config = None
        self._sums_over_batch = isinstance(loss, str) and loss == "auto"
        if self._sums_over_batch:
            loss = self.default_loss()
        if isinstance(metrics, str) and metrics == "auto":
            metrics = self.default_metrics()
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    # -- losses: the original's batch sums, shown per example ------------------------

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = super().compute_loss(x, y, y_pred, sample_weight, training)
        if self._sums_over_batch and loss is not None:
            loss = loss / tf.cast(_batch_size(x), loss.dtype)
        return loss

    def train_step(self, data):
        if not self._sums_over_batch:
            return super().train_step(data)
        # Keras' train step, except that the gradients are those of the batch sum (the
        # original's update, clipping included) while the loss shown is per example.
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x, y, y_pred, sample_weight, training=True)
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            self._loss_tracker.update_state(loss * replicas, sample_weight=_batch_size(x))
            update_loss = self.optimizer.scale_loss(
                loss * tf.cast(_batch_size(x), loss.dtype))
        gradients = tape.gradient(update_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    # -- fit / evaluate / predict on texts or features -----------------------------------

    def fit(self, x=None, y=None, batch_size=None, epochs=1, sample_weight=None,
            steps_per_epoch=None, validation_data=None, validation_split=0.0, **kwargs):
        x, y, sample_weight = self._features(x, y, sample_weight)
        if validation_data is not None:
            validation_data = self._validation_features(validation_data)
        updates = None
        try:
            per_epoch = steps_per_epoch or _steps_per_epoch(x, batch_size, validation_split)
            updates = int(per_epoch * (epochs - kwargs.get("initial_epoch", 0)))
        except ValueError:
            if self._pending_compile is not None:
                raise
        if self._pending_compile is not None:
            pending = self._pending_compile.kwargs
            with self.distribute_strategy.scope():  # the optimizer's slots beside the weights
                self.compile(num_train_steps=updates, **pending)
        if not any(isinstance(c, keras.callbacks.LearningRateScheduler)
                   for c in kwargs.get("callbacks") or ()):
            self._check_schedule(updates)  # a scheduler callback sets the rate itself
        return super().fit(x, y, batch_size=batch_size, epochs=epochs,
                           sample_weight=sample_weight, steps_per_epoch=steps_per_epoch,
                           validation_data=validation_data, validation_split=validation_split,
                           **kwargs)

    def _check_schedule(self, updates: Optional[int]) -> None:
        """Refuses a fit that would train at learning rate 0; warns for one that runs past
        the schedule's end."""
        if self._auto_compile.config is None or self.optimizer is None:
            return
        optimizer = getattr(self.optimizer, "inner_optimizer", self.optimizer)
        schedule = getattr(optimizer, "_learning_rate", None)
        total = getattr(schedule, "num_train_steps", None)
        override = getattr(optimizer, "_learning_rate_override", None)
        if total is None or (override is not None and float(override.numpy()) >= 0):
            return  # a learning rate set by a callback replaces the schedule
        done = int(optimizer.iterations.numpy())
        if done >= total:
            raise ScheduleEndedError(
                f"compile()'s learning-rate schedule ended after {total} updates and "
                f"{done} are done: this fit would train at learning rate 0; call compile() "
                "again for a new schedule, or pass compile(num_train_steps=<the updates of "
                "every fit>) up front")
        if updates is not None and done + updates > total:
            warnings.warn(
                f"compile()'s learning-rate schedule ends after {total} updates ({done} done): "
                f"the last {done + updates - total} of this fit's {updates} updates train at "
                "learning rate 0", stacklevel=3)

    def evaluate(self, x=None, y=None, batch_size=None, sample_weight=None, **kwargs):
        x, y, sample_weight = self._features(x, y, sample_weight)
        return super().evaluate(x, y, batch_size=batch_size, sample_weight=sample_weight,
                                **kwargs)

    def predict(self, x, batch_size=None, **kwargs):
        x, _, _ = self._features(x, None, None)
        return super().predict(x, batch_size=batch_size, **kwargs)

    def train_on_batch(self, x, y=None, sample_weight=None, **kwargs):
        x, y, sample_weight = self._features(x, y, sample_weight)
        return super().train_on_batch(x, y, sample_weight=sample_weight, **kwargs)

    def test_on_batch(self, x, y=None, sample_weight=None, **kwargs):
        x, y, sample_weight = self._features(x, y, sample_weight)
        return super().test_on_batch(x, y, sample_weight=sample_weight, **kwargs)

    def predict_on_batch(self, x):
        x, _, _ = self._features(x, None, None)
        return super().predict_on_batch(x)

    def _features(self, x, y, sample_weight):
        """Texts -> features through the preprocessor; features pass as they are; label
        lists become arrays."""
        if isinstance(x, tf.data.Dataset):
            spec = x.element_spec
            first = spec[0] if isinstance(spec, tuple) else spec
            if isinstance(first, Mapping):
                return x, y, sample_weight
            preprocessor = self._require_preprocessor()
            return (x.map(lambda *element: preprocessor(*element),
                          num_parallel_calls=tf.data.AUTOTUNE), y, sample_weight)
        if isinstance(y, list):
            y = np.asarray(y)
        if isinstance(sample_weight, list):
            sample_weight = np.asarray(sample_weight)
        if x is None or isinstance(x, Mapping):
            if isinstance(x, Mapping):
                self._check_features(x)
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

    # -- serving ----------------------------------------------------------------------

    def serving_outputs(self, features) -> dict:
        """What the exported ``serve`` endpoints return for features (a dict)."""
        out = self(features, training=False)
        return dict(out) if isinstance(out, Mapping) else {"outputs": out}

    def export(self, filepath, format="tf_saved_model", verbose=None, **kwargs):
        """A SavedModel that serves raw strings (tokenization in the graph) and features.

        Endpoints: ``serve(text)`` [B] strings, ``serve_pair(text_a, text_b)`` and
        ``serve_features(input_ids, input_mask, segment_ids)`` [B, L] int32; each returns
        the model's outputs (``outputs``: the logits, or the QA dict) and the features.
        Without a preprocessor (or for other formats), Keras' own ``export``.
        """
        if format != "tf_saved_model" or self.preprocessor is None:
            return super().export(filepath, format=format, verbose=verbose, **kwargs)
        if not self.built:
            self.build()
        archive = keras.export.ExportArchive()
        archive.track(self)
        length = self.preprocessor.sequence_length

        def with_features(features):
            return {**self.serving_outputs(features), **features}

        archive.add_endpoint(
            "serve", lambda text: with_features(self.preprocessor(text)),
            input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        archive.add_endpoint(
            "serve_pair", lambda a, b: with_features(self.preprocessor((a, b))),
            input_signature=[tf.TensorSpec([None], tf.string, name="text_a"),
                             tf.TensorSpec([None], tf.string, name="text_b")])
        archive.add_endpoint(
            "serve_features",
            lambda ids, mask, segments: self.serving_outputs(
                {"input_ids": ids, "input_mask": mask, "segment_ids": segments}),
            input_signature=[tf.TensorSpec([None, length], tf.int32, name=name)
                             for name in FEATURE_NAMES])
        archive.write_out(filepath, verbose=bool(verbose))


def _is_text(x) -> bool:
    if isinstance(x, (str, bytes)):
        return True
    if isinstance(x, tuple) and x:
        return all(_is_text(s) for s in x)
    if tf.is_tensor(x) and not isinstance(x, keras.KerasTensor):
        return x.dtype == tf.string
    if isinstance(x, (list, np.ndarray)):
        flat = np.asarray(x, dtype=object).reshape(-1)
        return bool(flat.size) and isinstance(flat[0], (str, bytes))
    return False


def _batch_size(x) -> tf.Tensor:
    """The number of examples of a batch of features (the first axis of input_ids)."""
    first = x["input_ids"] if isinstance(x, Mapping) else tf.nest.flatten(x)[0]
    return tf.shape(first)[0]


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
