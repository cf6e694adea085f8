"""Running pre-trained ELECTRA models on text: the toolbox of detection and scoring.

* Texts to model inputs: :func:`encode` packs a text or (text_a, text_b) pair with the
  rule of :mod:`electra_tf.preprocessing` (the one fine-tuning and the SavedModel use),
  unpadded; :func:`batches_by_length` and :func:`pad_batch` batch examples of similar
  length.
* Models: :func:`resolve` loads a checkpoint (anything
  :func:`electra_tf.loading.load_pretrained` reads) with its tokenizer and default
  ``max_seq_length``; :func:`compiled` caches one tf.function per model.
* Replaced-token detection (:func:`detect_replaced_tokens`, :class:`Detection`) on
  :func:`discriminator_logits`; Electric scoring (:mod:`electra_tf.scoring`) reads the same
  logits as energies.
* The command-line pieces that ``python -m electra_tf.detect`` and
  ``python -m electra_tf.scoring`` share: their common flags, reading texts, reporting
  truncation and user errors as one line.

TensorFlow is imported on first use, not by importing this module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
import weakref
from collections.abc import Iterable, Sequence

import numpy as np

from electra_tf import cli, preprocessing
from electra_tf.preprocessing import check_max_seq_length
from electra_tf.io_utils import first_line

TextInput = str | Sequence[str]  # a text, or (text_a, text_b)


class InputError(ValueError):
    """A user-facing problem with the texts, the vocabulary or the options."""


# ---------------------------------------------------------------------------
# Texts to model inputs
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class Encoded:
    """One example as the model sees it, unpadded.

    Attributes:
      input_ids, segment_ids: [n], ``[CLS] a [SEP] (b [SEP])``.
      positions: the sequence positions that are reported [k] (for a packed text: every
        position but [CLS] and [SEP]).
      truncated: word-pieces of the text that did not fit into ``max_seq_length`` and were
        not scored.
    """

    input_ids: list
    segment_ids: list
    positions: list
    truncated: int


def split_pair(text: TextInput):
    """``(text_a, text_b or None)`` of a text or a (text_a, text_b) pair."""
    if isinstance(text, str):
        return text, None
    if isinstance(text, (tuple, list)) and len(text) in (1, 2) and \
            all(isinstance(t, str) for t in text):
        return text[0], (text[1] if len(text) == 2 else None)
    raise InputError(f"expected a text or a (text_a, text_b) pair of strings, got {text!r}")


def encode(tokenizer, text: TextInput, max_seq_length: int) -> Encoded:
    """A text or pair as ``[CLS] a [SEP] (b [SEP])`` ids, truncated to ``max_seq_length``
    by :func:`electra_tf.preprocessing.pack_pair` (an empty ``text_b`` counts as absent)."""
    text_a, text_b = split_pair(text)
    packed = preprocessing.pack_pair(
        tokenizer.encode(text_a), None if text_b is None else tokenizer.encode(text_b),
        max_seq_length, tokenizer.special_ids["cls"], tokenizer.special_ids["sep"])
    return Encoded(packed.input_ids, packed.segment_ids, packed.text_positions,
                   packed.truncated)


def pad_batch(examples: Sequence[Encoded], length_multiple: int = 1,
              num_rows: int | None = None):
    """int32 arrays ``input_ids``, ``input_mask``, ``segment_ids`` [rows, length].

    ``length`` is the longest example rounded up to ``length_multiple``; ``rows`` is
    ``num_rows`` (all-padding rows after the examples) or ``len(examples)``. Fixed shapes
    let an XLA-compiled model compile a few shapes instead of one per batch.
    """
    longest = max(len(e.input_ids) for e in examples)
    length = -(-longest // length_multiple) * length_multiple
    ids = np.zeros((max(num_rows or 0, len(examples)), length), np.int32)
    mask = np.zeros_like(ids)
    segments = np.zeros_like(ids)
    for row, e in enumerate(examples):
        n = len(e.input_ids)
        ids[row, :n], mask[row, :n], segments[row, :n] = e.input_ids, 1, e.segment_ids
    return ids, mask, segments


def batches_by_length(examples: Sequence[Encoded], batch_size: int):
    """Index lists of at most ``batch_size`` examples of similar length (less padding)."""
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].input_ids))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


# ---------------------------------------------------------------------------
# Models and tokenizers
# ---------------------------------------------------------------------------


def make_tokenizer(vocab_file: str | None, do_lower_case: bool, vocab_size: int):
    """The faithful WordPiece tokenizer of ``vocab_file``, checked against the model's vocab."""
    from electra_tf import tokenization
    if not vocab_file:
        raise InputError("no vocabulary: pass vocab_file (--vocab_file)")
    try:
        tokenizer = tokenization.FullTokenizer(vocab_file, do_lower_case=do_lower_case)
    except (OSError, ValueError) as e:  # missing file, missing special tokens
        raise InputError(first_line(e)) from e
    if tokenizer.vocab_size != vocab_size:
        raise InputError(f"{vocab_file} has {tokenizer.vocab_size} tokens but the model's "
                         f"embedding table has {vocab_size} rows: wrong --vocab_file?")
    return tokenizer


def load(model_or_path, require: tuple, need_vocab: bool = True):
    """A :class:`~electra_tf.loading.PretrainedModel` from a path, or the model given."""
    from electra_tf import loading
    if isinstance(model_or_path, (str, os.PathLike)):
        need = tuple(require) + (("vocab",) if need_vocab else ())
        return loading.load_pretrained(os.fspath(model_or_path), require=need)
    return model_or_path


def resolve(model_or_path, require: tuple, tokenizer=None, vocab_file=None,
            do_lower_case=None, max_seq_length=None):
    """(PretrainedModel or bare Keras model, tokenizer, max_seq_length, transformer config).

    Without an explicit ``max_seq_length`` the pre-training length of the
    checkpoint applies (positions beyond it were never trained), or, for a bare
    Keras model, ``max_position_embeddings``.
    """
    from electra_tf.loading import PretrainedModel
    model = load(model_or_path, require, need_vocab=tokenizer is None and not vocab_file)
    if isinstance(model, PretrainedModel):
        network = model.discriminator if model.discriminator is not None else model.generator
        transformer = network.config
        default_len = model.config.max_seq_length
        lower = model.config.do_lower_case
        vocab = vocab_file or model.vocab_file
    else:
        transformer = model.config
        default_len = transformer.max_position_embeddings
        lower = True
        vocab = vocab_file
    if tokenizer is None:
        tokenizer = make_tokenizer(vocab, lower if do_lower_case is None else do_lower_case,
                                   transformer.vocab_size)
    default_len = min(default_len, transformer.max_position_embeddings)
    return model, tokenizer, (default_len if max_seq_length is None else max_seq_length), \
        transformer


_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def compiled(model, key: str, build):
    """A tf.function per (model, key), built once by ``build(model_ref)``.

    ``build`` gets a weak reference (call it to get the model) so that the cached
    function does not keep its model alive.
    """
    cache = _FUNCTIONS.setdefault(model, {})
    if key not in cache:
        cache[key] = build(weakref.ref(model))
    return cache[key]


# ---------------------------------------------------------------------------
# The discriminator's logits; replaced-token detection
# ---------------------------------------------------------------------------


# Under XLA, batches are padded to a multiple of this length (and to full batch rows), so
# a run compiles at most max_seq_length / 16 shapes.
XLA_LENGTH_MULTIPLE = 16


def use_xla(model, jit_compile: bool | None = None) -> bool:
    """``jit_compile``, or the default of the model's compute precision on this device.

    On one CPU the default is measured (:func:`electra_tf.training.strategy.xla_is_default`:
    the CPU probe, run once per machine and cached): XLA where it was faster in that
    precision (which way it goes differs between CPUs: README "Speed" has the figures). On
    GPUs and TPUs: XLA in bfloat16/float16, where its fusion matters most, not in
    float32.
    """
    if jit_compile is not None:
        return bool(jit_compile)
    import tensorflow as tf
    from electra_tf.training import strategy
    dtype = str(getattr(model, "compute_dtype", "float32"))
    distribution = tf.distribute.get_strategy()
    if strategy.xla_is_probed(distribution):
        return strategy.xla_is_default(distribution, dtype)
    return dtype in ("bfloat16", "float16")


def _discriminator_logits(model_ref, jit_compile: bool = False):
    import tensorflow as tf
    spec = tf.TensorSpec([None, None], tf.int32)

    @tf.function(input_signature=[spec, spec, spec], jit_compile=jit_compile)
    def logits(input_ids, input_mask, segment_ids):
        out = model_ref()({"input_ids": input_ids, "input_mask": input_mask,
                             "segment_ids": segment_ids}, training=False)
        return tf.cast(out["logits"], tf.float32)
    return logits


def discriminator_logits(discriminator, examples: Sequence[Encoded], batch_size: int,
                         jit_compile: bool | None = None) -> list:
    """float32 logits [len(input_ids)] of every example, in batches of similar length.

    ``jit_compile``: run the model under XLA (None: see :func:`use_xla`).
    """
    xla = use_xla(discriminator, jit_compile)
    fn = compiled(discriminator, "logits_xla" if xla else "logits",
                  lambda ref: _discriminator_logits(ref, jit_compile=xla))
    out = [None] * len(examples)
    for indices in batches_by_length(examples, batch_size):
        ids, mask, segments = pad_batch(
            [examples[i] for i in indices],
            length_multiple=XLA_LENGTH_MULTIPLE if xla else 1,
            num_rows=min(batch_size, len(examples)) if xla else None)
        logits = fn(ids, mask, segments).numpy()
        for row, i in enumerate(indices):
            out[i] = logits[row, :len(examples[i].input_ids)]
    return out


@dataclasses.dataclass
class Detection:
    """Replaced-token predictions for one text (one entry per word-piece).

    Attributes:
      text, text_b: the input (``text_b`` None for a single text).
      tokens: the word-pieces scored, [CLS]/[SEP] excluded.
      labels: 1 where the discriminator logit is > 0 (replaced), else 0.
      probabilities: sigmoid(logit), the probability of "replaced".
      logits: the raw discriminator logits.
      segments: 0 for word-pieces of ``text``, 1 for ``text_b``.
      truncated: word-pieces beyond ``max_seq_length`` that were not scored.
    """

    text: str
    text_b: str | None
    tokens: list
    labels: list
    probabilities: list
    logits: list
    segments: list
    truncated: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def detect_replaced_tokens(model_or_path, texts: Iterable[TextInput], *, tokenizer=None,
                           vocab_file: str | None = None,
                           do_lower_case: bool | None = None,
                           max_seq_length: int | None = None,
                           batch_size: int = 32, jit_compile: bool | None = None) -> list:
    """Predicts, for every word-piece of every text, whether it was replaced.

    Args:
      model_or_path: a checkpoint path (TF1 or HF directory), a
        :class:`~electra_tf.loading.PretrainedModel`, or a bare
        :class:`~electra_tf.networks.discriminator.Discriminator` (then give
        ``tokenizer`` or ``vocab_file``).
      texts: strings, or (text_a, text_b) pairs.
      tokenizer: overrides the vocabulary beside the checkpoint.
      vocab_file: WordPiece vocabulary; default: ``vocab.txt`` beside the checkpoint.
      do_lower_case: default: the checkpoint's ``do_lower_case`` (True if unknown).
      max_seq_length: word-pieces per example including [CLS]/[SEP]; default:
        the checkpoint's pre-training ``max_seq_length``.
      batch_size: examples per forward pass.
      jit_compile: run the model under XLA; default: on a CPU where the CPU probe found
        XLA faster in the model's precision, elsewhere in bfloat16/float16
        (:func:`use_xla`). The precision is the Keras policy the model was built under
        (``python -m electra_tf.detect --mixed_precision``).
    Returns:
      one :class:`Detection` per text, in order.
    Raises:
      InputError / CheckpointError (ValueError): a one-line user-facing message.
    """
    model, tokenizer, max_len, transformer = resolve(
        model_or_path, ("discriminator_head",), tokenizer, vocab_file, do_lower_case,
        max_seq_length)
    return detect_with(model, tokenizer, texts, max_len, transformer, batch_size, jit_compile)


def detect_with(model, tokenizer, texts: Iterable[TextInput], max_seq_length: int,
                transformer, batch_size: int = 32, jit_compile: bool | None = None) -> list:
    """:func:`detect_replaced_tokens` once model, tokenizer and length are resolved."""
    texts = list(texts)
    discriminator = getattr(model, "discriminator", model)
    if discriminator is None or getattr(model, "has_discriminator_head", True) is False:
        raise InputError("the model has no replaced-token detection head")
    pairs = any(split_pair(t)[1] is not None for t in texts)
    check_max_seq_length(max_seq_length, transformer.max_position_embeddings, pair=pairs,
                         error=InputError)
    examples = [encode(tokenizer, t, max_seq_length) for t in texts]
    if not examples:
        return []
    all_logits = discriminator_logits(discriminator, examples, batch_size, jit_compile)
    results = []
    for text, example, logits in zip(texts, examples, all_logits):
        text_a, text_b = split_pair(text)
        picked = logits[np.asarray(example.positions, np.int64)].astype(np.float64)
        ids = [example.input_ids[p] for p in example.positions]
        results.append(Detection(
            text=text_a, text_b=text_b, tokens=tokenizer.convert_ids_to_tokens(ids),
            labels=[int(v > 0) for v in picked],
            probabilities=[float(1.0 / (1.0 + math.exp(-v))) for v in picked],
            logits=[float(v) for v in picked],
            segments=[example.segment_ids[p] for p in example.positions],
            truncated=example.truncated))
    return results


# ---------------------------------------------------------------------------
# Command-line pieces shared by electra_tf.detect and electra_tf.scoring
# ---------------------------------------------------------------------------


def define_common_flags(flag_values) -> None:
    """The flags of both commands, on an absl FlagValues (texts are positional)."""
    from absl import flags
    flags.DEFINE_string("checkpoint", None,
                        "TF1 checkpoint (directory or prefix), pre-training run directory "
                        "(its newest complete ckpt-N) or one ckpt-N, or HF directory",
                        required=True, flag_values=flag_values)
    flags.DEFINE_string("input_file", None, "one text per line ('-': stdin)",
                        flag_values=flag_values)
    flags.DEFINE_string("vocab_file", None, "default: vocab.txt beside the checkpoint",
                        flag_values=flag_values)
    flags.DEFINE_boolean("do_lower_case", None,
                         "lower-case the text (default: the checkpoint's setting, else on); "
                         "--nodo_lower_case keeps case", flag_values=flag_values)
    flags.DEFINE_integer("max_seq_length", None,
                         "word-pieces per example with [CLS]/[SEP] (default: the "
                         "checkpoint's pre-training length); longer texts are truncated and "
                         "reported", flag_values=flag_values)
    flags.DEFINE_integer("batch_size", 32, "examples per forward pass",
                         flag_values=flag_values)
    flags.DEFINE_boolean("json", False, "print one JSON object per text (JSON Lines)",
                         flag_values=flag_values)
    flags.DEFINE_enum("mixed_precision", "auto", ["auto", "float32", "bfloat16", "float16"],
                      "compute precision of the model (weights load as float32): auto = "
                      "bfloat16 on TPUs and on GPUs with bfloat16 tensor cores, float32 on "
                      "other GPUs, on CPUs the faster one measured by the CPU probe (cached "
                      "per machine), which also decides whether the model runs under XLA",
                      flag_values=flag_values)


@contextlib.contextmanager
def keras_precision(mixed_precision: str):
    """The Keras policy of the models built inside (``--mixed_precision``), restored after.

    Yields the precision used: "float32", "bfloat16" or "float16" ("auto": the device's
    default, :func:`electra_tf.training.strategy.default_precision`: on a CPU the faster
    one in the CPU probe, cached per machine). Built models keep their policy, so they may
    run after the block.
    """
    import keras
    from electra_tf.training import strategy
    if mixed_precision == "auto":
        mixed_precision = strategy.default_precision("default")[0] or "float32"
    before = keras.mixed_precision.global_policy()
    strategy.set_precision(mixed_precision)
    try:
        yield mixed_precision
    finally:
        keras.mixed_precision.set_global_policy(before)


def read_lines(path: str) -> list:
    """Non-blank lines of a UTF-8 file (``-``: stdin), as (line number, text) pairs."""
    try:
        if path == "-":
            lines = sys.stdin.read().splitlines()
        else:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
    except FileNotFoundError:
        raise InputError(f"--input_file {path}: no such file") from None
    except UnicodeDecodeError as e:
        raise InputError(f"--input_file {path}: not UTF-8 ({e.reason} at byte {e.start})") \
            from None
    except OSError as e:
        raise InputError(f"--input_file {path}: {e.strerror or e}") from None
    out = [(n, line.rstrip("\r")) for n, line in enumerate(lines, 1) if line.strip()]
    if not out:
        raise InputError(f"--input_file {path} has no non-blank line")
    return out


def gather_texts(texts: Sequence[str], input_file: str | None) -> list:
    """(source label, text) pairs from the positional texts, then ``--input_file``'s lines."""
    items = [(f"text {i}", t) for i, t in enumerate(texts, 1)]
    if input_file:
        items += [(f"{input_file}:{n}", line) for n, line in read_lines(input_file)]
    if not items:
        raise cli.UsageError("give texts or --input_file (see --help)")
    return items


def report_truncation(label: str, truncated: int, max_seq_length: int) -> None:
    if truncated:
        print(f"warning: {label}: {truncated} word-piece(s) beyond --max_seq_length="
              f"{max_seq_length} were not scored (raise --max_seq_length to score them)",
              file=sys.stderr)


def _user_error_types() -> tuple:
    """Errors that are the user's to fix: bad values, missing or damaged files (TensorFlow's
    OpError once tensorflow is imported)."""
    errors = [ValueError, OSError, NotImplementedError]
    if "tensorflow" in sys.modules:
        errors.append(sys.modules["tensorflow"].errors.OpError)
    return tuple(errors)


@contextlib.contextmanager
def user_errors_as_one_line():
    """Re-raises the user's errors (:func:`_user_error_types`) as an :class:`InputError` of
    their first line, which :func:`electra_tf.cli.run` prints as one ``error:`` line."""
    try:
        yield
    except _user_error_types() as e:
        raise InputError(first_line(e)) from None
