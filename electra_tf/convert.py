r"""Converts a pre-trained ELECTRA between checkpoint formats, exactly.

    python -m electra_tf.convert --input=models/electra_small --output=out/hf --to=hf
    python -m electra_tf.convert --input=out/hf --output=out/tf1 --to=tf1
    python -m electra_tf.convert --input=$DATA/models/run/tf1 --output=out/keras --to=keras

The input's format is detected; every weight is copied bit for bit (float32),
with the global step when the source has one; optimizer slots are not carried.

* ``tf1``: a checkpoint with the original variable names (spec 7): Google's
  releases, ``<model_dir>/tf1`` and ``<model_dir>/discriminator`` exports, a
  prefix or ``.index`` path. As input also a pre-training run directory (its
  newest complete ``ckpt-N``, also mid-run) or one ``<model_dir>/ckpt-N``. Written
  as ``DIR/model.ckpt[-<step>].*`` with a ``checkpoint`` state file,
  ``pretraining_config.json`` and ``vocab.txt``.
* ``hf``: a Hugging Face transformers ELECTRA directory (``config.json`` +
  ``model.safetensors``), or a ``discriminator/`` + ``generator/`` pair of them
  (see :mod:`electra_tf.hf`). ``--hf_kind`` chooses what is written: ``auto``
  writes both networks of a full ELECTRA checkpoint as ``DIR/discriminator``
  (ElectraForPreTraining) and ``DIR/generator`` (ElectraForMaskedLM), else the
  one network there is into ``DIR``.
* ``keras``: electra_tf's TF2 format: ``DIR/ckpt-<step>.*`` (+ ``checkpoint``), a
  ``tf.train.Checkpoint`` whose ``weights`` attribute is ``{original name:
  variable}`` of our Keras models (plus ``global_step`` when known), with
  ``pretraining_config.json`` and ``vocab.txt``. Restore it into models built from
  that config with ``tf.train.Checkpoint(weights=electra_tf.original_variables(*models))
  .read(prefix)``. The weights are keyed by original name rather than by the
  Keras object graph because Keras 3 layer lists (the transformer layers) are not
  part of TensorFlow's object graph.

Bad input (missing path, unknown ``--to``, an existing non-empty ``--output``
without ``--overwrite``, unreadable or unsupported weights) prints one
``error: ...`` line and exits with status 1. Outputs are written to a temporary
directory and renamed into place.
"""

from __future__ import annotations

import os
import re
import sys

from electra_tf.io_utils import check_output_directory, staged_directory

FORMATS = ("tf1", "hf", "keras")
HF_KINDS = ("auto", "both", "discriminator", "generator", "model")
CONFIG_FILE = "pretraining_config.json"
VOCAB_FILE = "vocab.txt"
KERAS_WEIGHTS = "weights"      # tf.train.Checkpoint attribute holding {original name: variable}
KERAS_STEP = "global_step"
_KERAS_KEY = re.compile(rf"^{KERAS_WEIGHTS}/([^/]+)/\.ATTRIBUTES/VARIABLE_VALUE$")


class ConversionError(ValueError):
    """Bad command-line input (paths, formats)."""


# ---------------------------------------------------------------------------
# The keras format
# ---------------------------------------------------------------------------

def _unescape(local_name: str) -> str:
    """Undoes tf.train.Checkpoint's escaping of a dict key ('.' -> '..', '/' -> '.S')."""
    return re.sub(r"\.(\.|S)", lambda m: "." if m.group(1) == "." else "/", local_name)


def _keras_prefix(path: str):
    """The checkpoint prefix of a keras-format directory, or None."""
    import tensorflow as tf

    from electra_tf import checkpoints
    try:
        prefix, _, shapes = checkpoints.open_checkpoint(path)
    except (checkpoints.CheckpointError, tf.errors.OpError, ValueError):
        return None
    names = set(shapes)
    if "_CHECKPOINTABLE_OBJECT_GRAPH" in names and any(_KERAS_KEY.match(n) for n in names):
        return prefix
    return None


def is_keras_directory(path: str) -> bool:
    return _keras_prefix(os.fspath(path)) is not None


def read_keras_weights(path: str):
    """Every weight of a keras-format directory by original name (a PretrainedWeights)."""
    import tensorflow as tf

    from electra_tf import checkpoints
    from electra_tf.loading import PretrainedWeights, read_sidecar_files
    prefix = _keras_prefix(os.fspath(path))
    if prefix is None:
        raise checkpoints.CheckpointError(f"{path} is not an electra_tf keras-format checkpoint")
    reader = tf.train.load_checkpoint(prefix)
    values, step = {}, None
    for key in reader.get_variable_to_shape_map():
        m = _KERAS_KEY.match(key)
        if m:
            values[_unescape(m.group(1))] = reader.get_tensor(key)
        elif key == f"{KERAS_STEP}/.ATTRIBUTES/VARIABLE_VALUE":
            step = int(reader.get_tensor(key))
    hparams, vocab = read_sidecar_files(prefix, require_config=True)
    return PretrainedWeights(values=values, hparams=hparams, vocab_file=vocab,
                             source=prefix, format="keras", global_step=step)


# ---------------------------------------------------------------------------
# Reading any format
# ---------------------------------------------------------------------------

def detect_format(path: str) -> str:
    """``"hf"``, ``"keras"`` or ``"tf1"``."""
    from electra_tf import loading
    return loading.detect_format(path)


def read_weights(path: str):
    """A PretrainedWeights from a checkpoint of any supported format."""
    from electra_tf import loading
    return loading.read_weights(path)


def load(path: str, hparams=None):
    """A built :class:`electra_tf.loading.PretrainedModel` from any supported format."""
    from electra_tf import loading
    return loading.build_from_weights(loading.read_weights(path, keep_models=True), hparams)


def _exported_variables(model) -> dict:
    """``{original name: variable}`` of a PretrainedModel (no head for a head-less source)."""
    from electra_tf import checkpoints
    variables = dict(checkpoints.original_variables(*model.models))
    if not model.has_discriminator_head:
        variables = {n: v for n, v in variables.items()
                     if not n.startswith("discriminator_predictions/")}
    return variables


def model_values(model) -> dict:
    """``{original name: numpy}`` of a PretrainedModel (no head for a head-less source)."""
    return {name: v.numpy() for name, v in _exported_variables(model).items()}


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------

def _write_config_and_vocab(directory: str, model) -> None:
    import tensorflow as tf
    model.config.to_json(os.path.join(directory, CONFIG_FILE))
    if model.vocab_file:
        tf.io.gfile.copy(model.vocab_file, os.path.join(directory, VOCAB_FILE), overwrite=True)


def write_tf1(model, output_dir: str, overwrite: bool = False) -> str:
    """Writes a TF1-name checkpoint directory; returns the checkpoint prefix."""
    from electra_tf import checkpoints
    step = model.weights.global_step
    name = f"model.ckpt-{step}" if step is not None else "model.ckpt"
    with staged_directory(output_dir, overwrite) as tmp:
        checkpoints.save_original_checkpoint(os.path.join(tmp, name),
                                             variables=model_values(model), global_step=step)
        _write_config_and_vocab(tmp, model)
    return os.path.join(os.path.abspath(output_dir), name)


def write_keras(model, output_dir: str, overwrite: bool = False) -> str:
    """Writes a keras-format directory; returns the checkpoint prefix."""
    import tensorflow as tf

    from electra_tf import checkpoints
    step = model.weights.global_step
    tracked = {KERAS_WEIGHTS: _exported_variables(model)}
    if step is not None:
        tracked[KERAS_STEP] = tf.Variable(step, dtype=tf.int64, trainable=False)
    name = f"ckpt-{step or 0}"
    with staged_directory(output_dir, overwrite) as tmp:
        tf.train.Checkpoint(**tracked).write(os.path.join(tmp, name))
        checkpoints._write_state_file(tmp, name)
        _write_config_and_vocab(tmp, model)
    return os.path.join(os.path.abspath(output_dir), name)


def _describe(model) -> str:
    parts = []
    if model.discriminator is not None:
        parts.append("discriminator" + ("" if model.has_discriminator_head else " (no head)"))
    if model.generator is not None:
        parts.append("MLM network" if model.discriminator is None else
                     type(model.generator).__name__.replace("TwoTowerClozeGenerator",
                                                            "two-tower generator").lower())
    return " + ".join(parts)


def _input_exists(path: str) -> bool:
    if "://" in path:
        import tensorflow as tf
        return tf.io.gfile.exists(path) or tf.io.gfile.exists(path + ".index")
    return os.path.exists(path) or os.path.exists(path + ".index")


def check_arguments(input_path: str, output_dir: str, to: str, overwrite: bool = False,
                    hf_kind: str = "auto", vocab_file: str | None = None) -> None:
    """The checks that need no TensorFlow; raises ConversionError or FileExistsError."""
    if not input_path:
        raise ConversionError("--input is required")
    if not output_dir:
        raise ConversionError("--output is required")
    if to not in FORMATS:
        raise ConversionError(f"--to must be one of {', '.join(FORMATS)}, got {to!r}")
    if hf_kind not in HF_KINDS:
        raise ConversionError(f"--hf_kind must be one of {', '.join(HF_KINDS)}, got {hf_kind!r}")
    if not _input_exists(input_path):
        raise ConversionError(f"input not found: {input_path}")
    if vocab_file and not _input_exists(vocab_file):
        raise ConversionError(f"--vocab_file not found: {vocab_file}")
    if "://" in output_dir:
        raise ConversionError(f"--output must be a local directory, got {output_dir}")
    check_output_directory(output_dir, overwrite)
    output = os.path.abspath(output_dir)
    if "://" not in input_path:
        source = os.path.abspath(input_path)
        if os.path.commonpath([source, output]) == output:
            raise ConversionError(f"--output {output_dir} contains --input {input_path}; "
                                  "choose another output directory")


def convert(input_path: str, output_dir: str, to: str, *, overwrite: bool = False,
            hf_kind: str = "auto", hparams=None, vocab_file: str | None = None) -> dict:
    """Converts ``input_path`` (any format) to ``to`` in ``output_dir``.

    Args:
      hf_kind: what ``to="hf"`` writes (see :func:`electra_tf.hf.write_hf_directory`).
      hparams: PretrainingConfig overrides for sources that lack a config (e.g. the
        number of attention heads of a TF1 checkpoint without pretraining_config.json).
      vocab_file: the vocabulary to ship (default: the one beside the input).
    Returns:
      ``{path written: description}``.
    """
    input_path, output_dir = os.fspath(input_path), os.fspath(output_dir)
    check_arguments(input_path, output_dir, to, overwrite, hf_kind, vocab_file)
    model = load(input_path, hparams)
    if vocab_file:
        model.weights.vocab_file = vocab_file
    notes = "" if model.vocab_file else "; no vocab.txt beside the input: pass --vocab_file"
    source = f"{model.weights.format} {_describe(model)}"
    if to == "tf1":
        return {write_tf1(model, output_dir, overwrite): f"TF1 checkpoint of the {source}{notes}"}
    if to == "keras":
        return {write_keras(model, output_dir, overwrite):
                f"keras checkpoint of the {source}{notes}"}
    from electra_tf import hf
    from electra_tf.modeling.electric import TwoTowerClozeGenerator
    if hf_kind == "auto" and isinstance(model.generator, TwoTowerClozeGenerator):
        notes += "; Electric's two-tower generator has no transformers equivalent: not written"
    written = hf.write_hf_directory(model, output_dir, model.vocab_file, kind=hf_kind,
                                    overwrite=overwrite)
    return {path: f"transformers {architecture}{notes}" for path, architecture in written.items()}


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------

def define_flags():
    """Defines the CLI flags (only when run as a script)."""
    from absl import flags
    flags.DEFINE_string("input", None, "Checkpoint to convert: TF1 checkpoint (directory, prefix "
                        "or .index), pre-training run directory or its ckpt-N, transformers "
                        "directory, or keras-format directory.")
    flags.DEFINE_string("output", None, "Directory to write (must not exist or be empty, "
                        "unless --overwrite).")
    flags.DEFINE_string("to", None, f"Output format: {', '.join(FORMATS)}.")
    flags.DEFINE_bool("overwrite", False, "Replace a non-empty --output directory.")
    flags.DEFINE_string("hf_kind", "auto", "With --to=hf: auto, both (discriminator/ + "
                        "generator/), discriminator (ElectraForPreTraining), generator "
                        "(ElectraForMaskedLM) or model (ElectraModel, the encoder only).")
    flags.DEFINE_string("hparams", None, "PretrainingConfig overrides (JSON or .json path) for a "
                        "source without a config, e.g. '{\"model_hparam_overrides\": "
                        "{\"num_attention_heads\": 12}}'.")
    flags.DEFINE_string("vocab_file", None, "Vocabulary to ship (default: vocab.txt beside "
                        "the input).")


def _one_line(error: Exception) -> str:
    return " ".join(line.strip() for line in str(error).strip().splitlines() if line.strip())


def main(argv):
    from absl import flags
    FLAGS = flags.FLAGS
    if len(argv) > 1:
        sys.exit(f"error: unexpected arguments {' '.join(argv[1:])!r} (use --input/--output/--to)")
    try:
        check_arguments(FLAGS.input, FLAGS.output, FLAGS.to, FLAGS.overwrite, FLAGS.hf_kind,
                        FLAGS.vocab_file)
        import tensorflow as tf
        try:
            written = convert(FLAGS.input, FLAGS.output, FLAGS.to, overwrite=FLAGS.overwrite,
                              hf_kind=FLAGS.hf_kind, hparams=FLAGS.hparams,
                              vocab_file=FLAGS.vocab_file)
        except tf.errors.OpError as e:
            raise OSError(e.message) from e
    except (ValueError, OSError) as e:
        sys.exit(f"error: {_one_line(e)}")
    for path, description in written.items():
        print(f"wrote {path} ({description})")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from absl import app
    define_flags()
    app.run(main)
