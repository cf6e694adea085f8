r"""Converts a pre-trained ELECTRA between checkpoint formats, exactly.

    python -m electra_tf.convert --input=models/electra_small --output=out/hf --to=hf
    python -m electra_tf.convert --input=out/hf --output=out/tf1 --to=tf1
    python -m electra_tf.convert --input=$DATA/models/run/tf1 --output=out/keras --to=keras
    python -m electra_tf.convert --input=electra_small_discriminator --output=out/kh --to=keras_hub

The input's format is detected; every weight is copied bit for bit (float32),
with the global step when the source has one; optimizer slots are not carried.
``--dtype=float16`` (with ``--to=tf1``) stores the weights in half precision instead:
half the bytes, for shipping a small model (electra_tf's packaged presets are stored
so); every reader widens them back to float32.

* ``tf1``: a checkpoint with the original variable names (spec 7): Google's
  releases, ``<model_dir>/tf1`` and ``<model_dir>/discriminator`` exports, a
  prefix or ``.index`` path. As input also a pre-training run directory (its
  newest complete ``ckpt-N``, also mid-run) or one ``<model_dir>/ckpt-N``. Written
  as ``DIR/model.ckpt[-<step>].*`` with a ``checkpoint`` state file,
  ``pretraining_config.json`` and ``vocab.txt``.
* ``hf``: a Hugging Face transformers ELECTRA directory (``config.json`` +
  ``model.safetensors``), or a ``discriminator/`` + ``generator/`` pair of them
  (see :mod:`electra_tf.formats.hf`). ``--hf_kind`` chooses what is written: ``auto``
  writes both networks of a full ELECTRA checkpoint as ``DIR/discriminator``
  (ElectraForPreTraining) and ``DIR/generator`` (ElectraForMaskedLM), else the
  one network there is into ``DIR``.
* ``keras``: electra_tf's TF2 format: ``DIR/ckpt-<step>.*`` (+ ``checkpoint``), a
  ``tf.train.Checkpoint`` whose ``weights`` attribute is ``{original name:
  variable}`` (plus ``global_step`` when known), with ``pretraining_config.json`` and
  ``vocab.txt`` (see :mod:`electra_tf.formats.keras`).
* ``keras_hub``: a keras-hub ``ElectraBackbone`` preset directory (``config.json``,
  ``model.weights.h5``, the tokenizer), which ``keras_hub.models.ElectraBackbone.from_preset``
  loads: one encoder, the discriminator's (or an MLM-only network's); heads and the
  generator are not written (see :mod:`electra_tf.formats.keras_hub`). Writing needs
  keras-hub; keras-hub runs GELU in its tanh form.

``--input`` may also name a released model (``electra_small_discriminator``,
``google/electra-base-generator``, ...: :mod:`electra_tf.presets`), downloaded on first use.

This module is the command line; the formats are :mod:`electra_tf.formats`, the models
are built by :mod:`electra_tf.loading`.

Bad input (missing path, unknown ``--to``, an existing non-empty ``--output``
without ``--overwrite``, unreadable or unsupported weights) prints one
``error: ...`` line and exits with status 1 (:mod:`electra_tf.cli`). Outputs are
written to a temporary directory and renamed into place. ``--overwrite`` replaces
only an earlier output of this converter (it records itself in each directory it
writes); a directory holding anything else, e.g. a run's ``tf1/`` export or the
``--input`` itself, is refused with or without it.
"""

from __future__ import annotations

import os

from electra_tf import cli
from electra_tf.formats import HF_KINDS, OUTPUT_FORMATS
from electra_tf.io_utils import (OutputRefused, check_output_directory, refuse_foreign_output,
                                 staged_directory)

# Recorded in the directories the converter writes (io_utils.OUTPUT_RECORD): --overwrite
# replaces only those.
COMMAND = "electra_tf.convert"


class ConversionError(ValueError):
    """Bad command-line input (paths, formats)."""


def _input_exists(path: str) -> bool:
    if "://" in path:
        import tensorflow as tf
        return tf.io.gfile.exists(path) or tf.io.gfile.exists(path + ".index")
    return os.path.exists(path) or os.path.exists(path + ".index")


def _preset(path: str) -> bool:
    from electra_tf import presets
    return presets.find(path) is not None


# How the written description names each input format.
_FORMAT_NAMES = {"keras_hub": "keras-hub preset", "preset": "preset"}
# How it names what each output format holds.
_WRITTEN = {"tf1": "TF1 checkpoint", "keras": "keras checkpoint",
            "keras_hub": "keras-hub ElectraBackbone preset"}
# Storage precisions of --dtype, and the output formats that can hold the narrower one.
DTYPES = ("float32", "float16")
NARROW_FORMATS = ("tf1",)


def check_arguments(input_path: str, output_dir: str, to: str, overwrite: bool = False,
                    hf_kind: str = "auto", vocab_file: str | None = None,
                    dtype: str = "float32") -> None:
    """The checks that need no TensorFlow; raises ConversionError or FileExistsError."""
    if not input_path:
        raise ConversionError("--input is required")
    if not output_dir:
        raise ConversionError("--output is required")
    if to not in OUTPUT_FORMATS:
        raise ConversionError(f"--to must be one of {', '.join(OUTPUT_FORMATS)}, got {to!r}")
    if dtype not in DTYPES:
        raise ConversionError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if dtype != "float32" and to not in NARROW_FORMATS:
        raise ConversionError(f"--dtype={dtype} is written only with --to="
                              f"{' or '.join(NARROW_FORMATS)}; --to={to} stores float32")
    if hf_kind not in HF_KINDS:
        raise ConversionError(f"--hf_kind must be one of {', '.join(HF_KINDS)}, got {hf_kind!r}")
    is_preset = not _input_exists(input_path) and _preset(input_path)
    if not _input_exists(input_path) and not is_preset:
        from electra_tf import presets
        raise ConversionError(f"input not found: {input_path}"
                              f"{presets.unknown_name_hint(input_path)}")
    if vocab_file and not _input_exists(vocab_file):
        raise ConversionError(f"--vocab_file not found: {vocab_file}")
    if "://" in output_dir:
        raise ConversionError(f"--output must be a local directory, got {output_dir}")
    output = os.path.abspath(output_dir)
    if "://" not in input_path and not is_preset:
        source = os.path.abspath(input_path)
        if os.path.commonpath([source, output]) == output:
            raise ConversionError(f"--output {output_dir} contains --input {input_path}; "
                                  "choose another output directory")
    try:
        refuse_foreign_output(output, COMMAND)
    except OutputRefused as e:
        raise ConversionError(str(e)) from None
    check_output_directory(output_dir, overwrite)


def convert(input_path: str, output_dir: str, to: str, *, overwrite: bool = False,
            hf_kind: str = "auto", hparams=None, vocab_file: str | None = None,
            dtype: str = "float32") -> dict:
    """Converts ``input_path`` (any format) to ``to`` in ``output_dir``.

    Args:
      hf_kind: what ``to="hf"`` writes (see :func:`electra_tf.formats.hf.write_hf_directory`).
      hparams: PretrainingConfig overrides for sources that lack a config (e.g. the
        number of attention heads of a TF1 checkpoint without pretraining_config.json).
      vocab_file: the vocabulary to ship (default: the one beside the input).
      dtype: the storage precision of the weights ("float16" only with ``to="tf1"``).
    Returns:
      ``{path written: description}``.
    """
    from electra_tf import formats, loading
    input_path, output_dir = os.fspath(input_path), os.fspath(output_dir)
    check_arguments(input_path, output_dir, to, overwrite, hf_kind, vocab_file, dtype)
    # Built (not only read) so that the weights are checked against the models they make.
    model = loading.build_from_weights(loading.read_weights(input_path, keep_models=True),
                                       hparams)
    if vocab_file:
        model.weights.vocab_file = vocab_file
    notes = "" if model.vocab_file else "; no vocab.txt beside the input: pass --vocab_file"
    fmt = model.weights.format
    source = f"{_FORMAT_NAMES.get(fmt, fmt)} {model.recipe.describe(model.has_discriminator_head)}"
    values = model.original_values()
    if dtype != "float32":
        values = {name: _stored_as(value, dtype) for name, value in values.items()}
        notes += f"; weights stored as {dtype}"
    options = {}
    if to == "keras_hub":
        left = [what for what, present in (
            ("the replaced-token detection head", model.has_discriminator_head),
            ("the generator", model.generator is not None and model.discriminator is not None),
            ("the masked-LM head", model.discriminator is None))
            if present]
        if left:
            notes += (f"; {' and '.join(left)} not written (a keras-hub ElectraBackbone "
                      "is one encoder)")
    elif to == "hf":
        options["kind"] = hf_kind
        if hf_kind == "auto" and model.recipe.cloze_generator:
            notes += ("; Electric's two-tower generator has no transformers equivalent: "
                      "not written")
    output = os.path.abspath(output_dir)
    # The format writer fills a staged directory that records the converter as its
    # author, so a later --overwrite may replace it (and nothing else).
    with staged_directory(output, overwrite, command=COMMAND) as staged:
        path = formats.write(to, staged, values, config=model.config,
                             vocab_file=model.vocab_file, global_step=model.weights.global_step,
                             overwrite=True, **options)
        if to == "hf":
            from electra_tf.formats import hf
            described = {os.path.join(path, subdir) if subdir else path:
                         f"transformers {architecture}{notes}"
                         for subdir, architecture, _ in hf.plan(values, hf_kind)}
        else:
            described = {path: f"{_WRITTEN[to]} of the {source}{notes}"}
    # Paths as they are after the rename into place.
    return {output + path[len(os.path.abspath(staged)):]: text
            for path, text in described.items()}


def _stored_as(value, dtype: str):
    """A float32 weight narrowed to ``dtype`` (other dtypes, e.g. integer steps, as they are).

    Raises:
      ConversionError: a weight's magnitude does not fit ``dtype`` (it would become inf).
    """
    import numpy as np
    value = np.asarray(value)
    if value.dtype != np.float32:
        return value
    with np.errstate(over="ignore"):  # an overflow is reported below, as an error
        narrow = value.astype(dtype)
    if not np.all(np.isfinite(narrow[np.isfinite(value)])):
        raise ConversionError(f"a weight of magnitude {float(np.abs(value).max()):.3g} does not "
                              f"fit {dtype} (max {float(np.finfo(dtype).max):.3g}): "
                              "convert with --dtype=float32")
    return narrow


def pack(source: str, release, *, dtype: str = "float16", overwrite: bool = False,
         facts: dict | None = None) -> dict:
    """Writes ``source`` (a pre-training run directory, one ``ckpt-N`` or any checkpoint
    :func:`convert` reads) as the packaged ``release`` (an :class:`electra_tf.presets.Release`
    whose ``packaged`` is the directory to write): a TF1 checkpoint in ``dtype`` with its
    config, vocabulary and manifest (:func:`electra_tf.presets.seal`), staged beside the
    target and renamed into place only once verified.

    Args:
      facts: extra JSON-able facts for the manifest (training command, FLOPs, scores).
    Returns:
      the manifest written.
    Raises:
      CheckpointError: the checkpoint is not the release its hparams describe; nothing is
        left in place then.
    """
    import shutil
    import uuid
    from electra_tf import presets
    if not release.packaged:
        raise ValueError(f"release {release.name} is not packaged (Release.packaged is None)")
    target = release.packaged
    staged = os.path.join(os.path.dirname(target), f".{release.name}.pack-{uuid.uuid4().hex[:8]}")
    try:
        convert(source, staged, "tf1", dtype=dtype)
        manifest = presets.seal(staged, release, dtype=dtype, facts=facts)
        if os.path.exists(target):
            if not overwrite:
                raise OutputRefused(f"{target} exists: pass overwrite=True to replace the "
                                    f"packaged release {release.name}")
            shutil.rmtree(target)
        os.rename(staged, target)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return manifest


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

def define_flags(flag_values) -> None:
    """Defines the converter's flags on ``flag_values`` (an absl FlagValues)."""
    from absl import flags
    flags.DEFINE_string("input", None, "Checkpoint to convert: TF1 checkpoint (directory, prefix "
                        "or .index), pre-training run directory or its ckpt-N, transformers "
                        "directory, keras-format directory, keras-hub preset directory, or a "
                        "released model's name (e.g. electra_small_discriminator).",
                        flag_values=flag_values)
    flags.DEFINE_string("output", None, "Directory to write (must not exist or be empty, "
                        "unless --overwrite).", flag_values=flag_values)
    flags.DEFINE_string("to", None, f"Output format: {', '.join(OUTPUT_FORMATS)}.",
                        flag_values=flag_values)
    flags.DEFINE_bool("overwrite", False, "Replace an earlier output of the converter at "
                      "--output (never a directory it did not write).",
                      flag_values=flag_values)
    flags.DEFINE_string("hf_kind", "auto", "With --to=hf: auto, both (discriminator/ + "
                        "generator/), discriminator (ElectraForPreTraining), generator "
                        "(ElectraForMaskedLM) or model (ElectraModel, the encoder only).",
                        flag_values=flag_values)
    flags.DEFINE_string("hparams", None, "PretrainingConfig overrides (JSON or .json path) for a "
                        "source without a config, e.g. '{\"model_hparam_overrides\": "
                        "{\"num_attention_heads\": 12}}'.", flag_values=flag_values)
    flags.DEFINE_string("vocab_file", None, "Vocabulary to ship (default: vocab.txt beside "
                        "the input).", flag_values=flag_values)
    flags.DEFINE_enum("dtype", "float32", list(DTYPES), "Storage precision of the weights: "
                      "float16 halves the files (only with --to=tf1; readers widen them "
                      "back to float32).", flag_values=flag_values)


def _one_line(error: Exception) -> str:
    return " ".join(line.strip() for line in str(error).strip().splitlines() if line.strip())


def _main(flag_values, positional: list) -> int:
    if positional:
        raise cli.UsageError(f"unexpected arguments {' '.join(positional)!r} "
                             "(use --input/--output/--to)")
    options = flag_values
    try:
        check_arguments(options.input, options.output, options.to, options.overwrite,
                        options.hf_kind, options.vocab_file, options.dtype)
        import tensorflow as tf
        try:
            written = convert(options.input, options.output, options.to,
                              overwrite=options.overwrite, hf_kind=options.hf_kind,
                              hparams=options.hparams, vocab_file=options.vocab_file,
                              dtype=options.dtype)
        except tf.errors.OpError as e:
            raise OSError(e.message) from e
    except (ValueError, OSError) as e:
        # Messages of the readers may span lines (a list of problems): one line here.
        raise cli.UsageError(_one_line(e)) from e
    for path, description in written.items():
        print(f"wrote {path} ({description})")
    return 0


def main(argv=None) -> int:
    """Runs the converter on ``argv`` (default ``sys.argv``); returns the exit status."""
    return cli.run(define_flags, _main, argv, description=__doc__)


console_main = cli.console(main)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    raise SystemExit(main())
