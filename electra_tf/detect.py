"""Replaced-token detection with a pre-trained ELECTRA discriminator.

The discriminator head gives one logit per word-piece; ``logit > 0`` means
"replaced" (spec 3.8) and ``sigmoid(logit)`` is the probability of that.

    python -m electra_tf.detect --checkpoint models/electra_small \\
        "The quick brown fox fake over the lazy dog"
    python -m electra_tf.detect --checkpoint DIR --input_file texts.txt --json

``--input_file`` holds one text per line, or ``text_a<TAB>text_b`` for a pair
(``[CLS] a [SEP] b [SEP]`` with segment ids 0/1, as in fine-tuning). Texts
longer than ``--max_seq_length`` word-pieces (with the special tokens) are
truncated (a pair: the longer text first); the number of word-pieces left
unscored is returned and reported, never dropped silently. [CLS] and [SEP]
are not reported: the results hold one label per word-piece of the text.

The checkpoint is anything :func:`electra_tf.loading.load_pretrained` reads
that has the detection head: a pre-training run directory (its newest complete
``ckpt-N``, also mid-run; pass ``--vocab_file`` unless a ``vocab.txt`` lies beside
it) or one ``<model_dir>/ckpt-N``, our exports (``<model_dir>/tf1``,
``<model_dir>/discriminator``), Google's releases, or a Hugging Face
``ElectraForPreTraining`` directory.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import weakref
from collections.abc import Iterable, Sequence

import numpy as np

from electra_tf.io_utils import first_line

TextInput = str | Sequence[str]  # a text, or (text_a, text_b)


class InputError(ValueError):
    """A user-facing problem with the texts, the vocabulary or the options."""


class UsageError(InputError):
    """A command-line usage problem (exit status 2)."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors are one line (``prog: error: ...``), not usage + error."""

    def error(self, message):
        raise UsageError(f"{message} (see --help)")


# ---------------------------------------------------------------------------
# Shared by detection and scoring: model/tokenizer resolution and encoding.
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class Encoded:
    """One example as the model sees it.

    ``positions`` are the sequence positions of the reported word-pieces (every
    position but [CLS] and [SEP]); ``truncated`` counts word-pieces of the text
    that did not fit into ``max_seq_length`` and were not scored.
    """

    input_ids: list
    segment_ids: list
    positions: list
    truncated: int


def encode(tokenizer, text: TextInput, max_seq_length: int) -> Encoded:
    """``[CLS] a [SEP]`` (or ``[CLS] a [SEP] b [SEP]``) ids, truncated to ``max_seq_length``."""
    text_a, text_b = split_pair(text)
    ids_a = list(tokenizer.encode(text_a))
    ids_b = list(tokenizer.encode(text_b)) if text_b is not None else None
    if ids_b is None:
        budget = max_seq_length - 2
        truncated = max(0, len(ids_a) - budget)
        ids_a = ids_a[:budget]
    else:
        budget = max_seq_length - 3
        truncated = max(0, len(ids_a) + len(ids_b) - budget)
        while len(ids_a) + len(ids_b) > budget:  # longest first, as BERT/ELECTRA fine-tuning
            (ids_a if len(ids_a) > len(ids_b) else ids_b).pop()
    cls, sep = tokenizer.special_ids["cls"], tokenizer.special_ids["sep"]
    input_ids = [cls] + ids_a + [sep]
    segment_ids = [0] * len(input_ids)
    positions = list(range(1, 1 + len(ids_a)))
    if ids_b is not None:
        positions += list(range(len(input_ids), len(input_ids) + len(ids_b)))
        input_ids += ids_b + [sep]
        segment_ids += [1] * (len(ids_b) + 1)
    return Encoded(input_ids, segment_ids, positions, truncated)


def split_pair(text: TextInput):
    """``(text_a, text_b or None)`` of a text or a (text_a, text_b) pair."""
    if isinstance(text, str):
        return text, None
    if isinstance(text, (tuple, list)) and len(text) in (1, 2) and \
            all(isinstance(t, str) for t in text):
        return text[0], (text[1] if len(text) == 2 else None)
    raise InputError(f"expected a text or a (text_a, text_b) pair of strings, got {text!r}")


def pad_batch(examples: Sequence[Encoded]):
    """int32 arrays ``input_ids``, ``input_mask``, ``segment_ids`` [B, longest]."""
    length = max(len(e.input_ids) for e in examples)
    ids = np.zeros((len(examples), length), np.int32)
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


def check_max_seq_length(max_seq_length: int, transformer_config, pairs: bool = False) -> int:
    limit = transformer_config.max_position_embeddings
    low = 3 if pairs else 2
    if not low <= max_seq_length <= limit:
        raise InputError(f"max_seq_length must be in [{low}, {limit}] "
                         f"(max_position_embeddings), got {max_seq_length}")
    return max_seq_length


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
# Detection
# ---------------------------------------------------------------------------


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


def _discriminator_logits(model_ref):
    import tensorflow as tf
    spec = tf.TensorSpec([None, None], tf.int32)

    @tf.function(input_signature=[spec, spec, spec])
    def logits(input_ids, input_mask, segment_ids):
        out = model_ref()({"input_ids": input_ids, "input_mask": input_mask,
                             "segment_ids": segment_ids}, training=False)
        return tf.cast(out["logits"], tf.float32)
    return logits


def discriminator_logits(discriminator, examples: Sequence[Encoded], batch_size: int) -> list:
    """float32 logits [len(input_ids)] of every example, in batches of similar length."""
    fn = compiled(discriminator, "logits", _discriminator_logits)
    out = [None] * len(examples)
    for indices in batches_by_length(examples, batch_size):
        ids, mask, segments = pad_batch([examples[i] for i in indices])
        logits = fn(ids, mask, segments).numpy()
        for row, i in enumerate(indices):
            out[i] = logits[row, :len(examples[i].input_ids)]
    return out


def detect_replaced_tokens(model_or_path, texts: Iterable[TextInput], *, tokenizer=None,
                           vocab_file: str | None = None,
                           do_lower_case: bool | None = None,
                           max_seq_length: int | None = None,
                           batch_size: int = 32) -> list:
    """Predicts, for every word-piece of every text, whether it was replaced.

    Args:
      model_or_path: a checkpoint path (TF1 or HF directory), a
        :class:`~electra_tf.loading.PretrainedModel`, or a bare
        :class:`~electra_tf.modeling.discriminator.Discriminator` (then give
        ``tokenizer`` or ``vocab_file``).
      texts: strings, or (text_a, text_b) pairs.
      tokenizer: overrides the vocabulary beside the checkpoint.
      vocab_file: WordPiece vocabulary; default: ``vocab.txt`` beside the checkpoint.
      do_lower_case: default: the checkpoint's ``do_lower_case`` (True if unknown).
      max_seq_length: word-pieces per example including [CLS]/[SEP]; default:
        the checkpoint's pre-training ``max_seq_length``.
      batch_size: examples per forward pass.
    Returns:
      one :class:`Detection` per text, in order.
    Raises:
      InputError / CheckpointError (ValueError): a one-line user-facing message.
    """
    model, tokenizer, max_len, transformer = resolve(
        model_or_path, ("discriminator_head",), tokenizer, vocab_file, do_lower_case,
        max_seq_length)
    return detect_with(model, tokenizer, texts, max_len, transformer, batch_size)


def detect_with(model, tokenizer, texts: Iterable[TextInput], max_seq_length: int,
                transformer, batch_size: int = 32) -> list:
    """:func:`detect_replaced_tokens` once model, tokenizer and length are resolved."""
    texts = list(texts)
    discriminator = getattr(model, "discriminator", model)
    if discriminator is None or getattr(model, "has_discriminator_head", True) is False:
        raise InputError("the model has no replaced-token detection head")
    pairs = any(split_pair(t)[1] is not None for t in texts)
    check_max_seq_length(max_seq_length, transformer, pairs)
    examples = [encode(tokenizer, t, max_seq_length) for t in texts]
    if not examples:
        return []
    all_logits = discriminator_logits(discriminator, examples, batch_size)
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
# Command line (shared pieces are used by electra_tf.scoring too)
# ---------------------------------------------------------------------------


def add_common_flags(parser: ArgumentParser) -> None:
    parser.add_argument("texts", nargs="*", help="texts to process (or use --input_file)")
    parser.add_argument("--checkpoint", required=True,
                        help="TF1 checkpoint (directory or prefix), pre-training run "
                             "directory (its newest complete ckpt-N) or one ckpt-N, or HF "
                             "directory")
    parser.add_argument("--input_file", help="one text per line ('-': stdin)")
    parser.add_argument("--vocab_file", help="default: vocab.txt beside the checkpoint")
    lower = parser.add_mutually_exclusive_group()
    lower.add_argument("--do_lower_case", dest="do_lower_case", action="store_const",
                       const=True, default=None,
                       help="lower-case the text (default: the checkpoint's setting, else on)")
    lower.add_argument("--nodo_lower_case", dest="do_lower_case", action="store_const",
                       const=False, help="keep case")
    parser.add_argument("--max_seq_length", type=int, default=None,
                        help="word-pieces per example with [CLS]/[SEP] (default: the "
                             "checkpoint's pre-training length); longer texts are truncated "
                             "and reported")
    parser.add_argument("--batch_size", type=int, default=32, help="examples per forward pass")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object per text (JSON Lines)")


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


def gather_texts(args, parser) -> list:
    """(source label, text) pairs from the positional texts and/or ``--input_file``."""
    items = [(f"text {i}", t) for i, t in enumerate(args.texts, 1)]
    if args.input_file:
        items += [(f"{args.input_file}:{n}", line) for n, line in read_lines(args.input_file)]
    if not items:
        parser.error("give texts or --input_file")
    return items


def report_truncation(label: str, truncated: int, max_seq_length: int) -> None:
    if truncated:
        print(f"warning: {label}: {truncated} word-piece(s) beyond --max_seq_length="
              f"{max_seq_length} were not scored (raise --max_seq_length to score them)",
              file=sys.stderr)


def run_cli(main_fn, argv, prog: str) -> int:
    """Runs ``main_fn(argv)`` turning user-facing errors into one line on stderr."""
    try:
        return main_fn(argv)
    except UsageError as e:
        print(f"{prog}: error: {first_line(e)}", file=sys.stderr)
        return 2
    except (ValueError, OSError, NotImplementedError) as e:
        print(f"{prog}: error: {first_line(e)}", file=sys.stderr)
        return 1
    except Exception as e:  # tf.errors.OpError from a damaged checkpoint and the like
        import tensorflow as tf
        if isinstance(e, tf.errors.OpError):
            print(f"{prog}: error: {first_line(e)}", file=sys.stderr)
            return 1
        raise


def _parse_detect_line(label: str, line: str):
    fields = line.split("\t")
    if len(fields) > 2:
        raise InputError(f"{label}: expected 'text' or 'text_a<TAB>text_b', got "
                         f"{len(fields)} tab-separated fields")
    return fields[0] if len(fields) == 1 else (fields[0], fields[1])


def format_table(result: Detection, label: str) -> str:
    title = result.text if result.text_b is None else f"{result.text} ||| {result.text_b}"
    lines = [f"{label}: {title}"]
    width = max([len("word-piece")] + [len(t) for t in result.tokens])
    pair = result.text_b is not None
    head = f"  {'#':>4}  {'word-piece':<{width}}  {'replaced':>8}  {'prob':>7}"
    lines.append(head + ("  seg" if pair else ""))
    for i, (tok, lab, prob, seg) in enumerate(zip(result.tokens, result.labels,
                                                   result.probabilities, result.segments), 1):
        row = f"  {i:>4}  {tok:<{width}}  {lab:>8}  {prob:>7.4f}"
        lines.append(row + (f"  {'ab'[seg]:>3}" if pair else ""))
    if result.truncated:
        lines.append(f"  ({result.truncated} word-piece(s) beyond max_seq_length not scored)")
    return "\n".join(lines)


def _main(argv) -> int:
    parser = ArgumentParser(
        prog="python -m electra_tf.detect",
        description="Replaced-token detection with an ELECTRA discriminator: one 0/1 label "
                    "(logit > 0 = replaced) and probability per word-piece.")
    add_common_flags(parser)
    args = parser.parse_args(argv)
    items = gather_texts(args, parser)
    labels = [label for label, _ in items]
    texts = [_parse_detect_line(label, t) for label, t in items]
    model, tokenizer, max_len, transformer = resolve(
        args.checkpoint, ("discriminator_head",), None, args.vocab_file, args.do_lower_case,
        args.max_seq_length)
    results = detect_with(model, tokenizer, texts, max_len, transformer, args.batch_size)
    for label, result in zip(labels, results):
        report_truncation(label, result.truncated, max_len)
        if args.json:
            print(json.dumps({"source": label, **result.to_dict()}, ensure_ascii=False))
        else:
            print(format_table(result, label))
    return 0


def main(argv: list | None = None) -> int:
    return run_cli(_main, argv, "detect")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
