"""Replaced-token detection with a pre-trained ELECTRA discriminator.

The discriminator head gives one logit per word-piece; ``logit > 0`` means
"replaced" (spec 3.8) and ``sigmoid(logit)`` is the probability of that.

    python -m electra_tf.detect --checkpoint models/electra_small \\
        "The quick brown fox fake over the lazy dog"
    python -m electra_tf.detect --checkpoint DIR --input_file texts.txt --json

``--input_file`` holds one text per line, or ``text_a<TAB>text_b`` for a pair
(``[CLS] a [SEP] b [SEP]`` with segment ids 0/1, as in fine-tuning). Texts
longer than ``--max_seq_length`` word-pieces (with the special tokens) are
truncated (a pair: the longer text first; an empty second text counts as
absent), by the rule of :mod:`electra_tf.preprocessing`; the number of
word-pieces left unscored is returned and reported, never dropped silently.
[CLS] and [SEP] are not reported: the results hold one label per word-piece
of the text.

The checkpoint is anything :func:`electra_tf.loading.load_pretrained` reads
that has the detection head: a pre-training run directory (its newest complete
``ckpt-N``, also mid-run; pass ``--vocab_file`` unless a ``vocab.txt`` lies beside
it) or one ``<model_dir>/ckpt-N``, our exports (``<model_dir>/tf1``,
``<model_dir>/discriminator``), Google's releases, or a Hugging Face
``ElectraForPreTraining`` directory.

This module is the command line; the API, :func:`detect_replaced_tokens` and
its :class:`Detection` results, lives in :mod:`electra_tf.detection` and is
importable from here too.
"""

from __future__ import annotations

import json
import sys

from electra_tf import cli
# The API of this command (README: "electra_tf.detect, API detect_replaced_tokens").
from electra_tf.detection import Detection, InputError, detect_replaced_tokens
from electra_tf.detection import (
    define_common_flags,
    detect_with,
    gather_texts,
    report_truncation,
    keras_precision,
    resolve,
    user_errors_as_one_line,
)

__all__ = ["Detection", "InputError", "detect_replaced_tokens", "main", "console_main"]


def _parse_detect_line(label: str, line: str):
    fields = line.split("\t")
    if len(fields) > 2:
        raise InputError(f"{label}: expected 'text' or 'text_a<TAB>text_b', got "
                         f"{len(fields)} tab-separated fields")
    return fields[0] if len(fields) == 1 else (fields[0], fields[1])


def format_table(result: Detection, label: str) -> str:
    """One text's word-pieces with their 0/1 label (and segment a/b for a pair)."""
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


def _main(flag_values, texts: list) -> int:
    items = gather_texts(texts, flag_values.input_file)
    labels = [label for label, _ in items]
    with user_errors_as_one_line():
        texts = [_parse_detect_line(label, t) for label, t in items]
        with keras_precision(flag_values.mixed_precision):
            model, tokenizer, max_len, transformer = resolve(
                flag_values.checkpoint, ("discriminator_head",), None,
                flag_values.vocab_file, flag_values.do_lower_case, flag_values.max_seq_length)
        results = detect_with(model, tokenizer, texts, max_len, transformer,
                              flag_values.batch_size)
    for label, result in zip(labels, results):
        report_truncation(label, result.truncated, max_len)
        if flag_values.json:
            print(json.dumps({"source": label, **result.to_dict()}, ensure_ascii=False))
        else:
            print(format_table(result, label))
    return 0


def main(argv=None) -> int:
    """``python -m electra_tf.detect [flags] [texts...]``; returns the exit status."""
    return cli.run(define_common_flags, _main, argv, user_errors=(InputError,), description=__doc__)


console_main = cli.console(main)

if __name__ == "__main__":
    sys.exit(main())
