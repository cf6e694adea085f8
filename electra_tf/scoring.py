"""Pseudo-log-likelihood scoring of text: Electric in one pass, or a masked LM per token.

Electric (Clark et al. 2020, "Pre-Training Transformers as Energy-Based Cloze
Models") trains the discriminator head output s_t as an energy: its training
logit is s_t + log q(x_t | context) + log(p / (1 - p)) (spec 3.10), the NCE
posterior of "noise", so exp(-s_t) is the unnormalised p(x_t | x without t).
The score of a text is therefore sum_t -s_t over its word-pieces (not [CLS],
[SEP] or padding), from ONE forward pass; NCE makes the model approximately
self-normalised, so this approximates a pseudo-log-likelihood.

The slow reference (``method="mlm"``) is the masked-LM pseudo-log-likelihood:
for every word-piece, replace it by [MASK], run the masked LM and add the log
softmax at the true id (one pass per word-piece). It works with the generator
of a full ELECTRA export (``<model_dir>/tf1``) or with an MLM-only model.

    python -m electra_tf.scoring --checkpoint DIR "a sentence" "another sentence"
    python -m electra_tf.scoring --checkpoint DIR --method mlm --per_token "a sentence"
    python -m electra_tf.scoring --checkpoint DIR --rerank --input_file nbest.tsv

``--rerank`` reads ``id<TAB>sentence`` lines, groups them by id (in order of
first appearance) and prints each group sorted by score, best first.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterable, Sequence

import numpy as np

from electra_tf import cli
from electra_tf.preprocessing import check_max_seq_length
from electra_tf.detection import (
    Encoded,
    InputError,
    batches_by_length,
    compiled,
    define_common_flags,
    discriminator_logits,
    encode,
    gather_texts,
    keras_precision,
    pad_batch,
    report_truncation,
    resolve,
    user_errors_as_one_line,
)

METHODS = ("electric", "mlm")


@dataclasses.dataclass
class SentenceScore:
    """The score of one text.

    Attributes:
      text: the input.
      score: sum of ``token_scores`` (higher = more likely).
      tokens: the word-pieces scored ([CLS]/[SEP] excluded).
      token_scores: -s_t (Electric) or log p_MLM(x_t | x with x_t masked) (``mlm``).
      truncated: word-pieces beyond ``max_seq_length`` that were not scored.
      method: ``"electric"`` or ``"mlm"``.
    """

    text: str
    score: float
    tokens: list
    token_scores: list
    truncated: int
    method: str

    @property
    def num_tokens(self) -> int:
        return len(self.tokens)

    @property
    def mean(self) -> float:
        """Score per word-piece (0 for an empty text)."""
        return self.score / len(self.tokens) if self.tokens else 0.0

    def to_dict(self, per_token: bool = True) -> dict:
        out = {"text": self.text, "score": self.score, "mean": self.mean,
               "num_tokens": self.num_tokens, "truncated": self.truncated,
               "method": self.method}
        if per_token:
            out.update(tokens=self.tokens, token_scores=self.token_scores)
        return out


def _texts(texts: Iterable[str]) -> list:
    texts = list(texts)
    for t in texts:
        if not isinstance(t, str):
            raise InputError(f"scoring takes single texts (strings), got {t!r}")
    return texts


def _result(tokenizer, text: str, example: Encoded, scores, method: str) -> SentenceScore:
    scores = [float(v) for v in np.asarray(scores, np.float64)]
    ids = [example.input_ids[p] for p in example.positions]
    return SentenceScore(text=text, score=float(np.sum(scores, dtype=np.float64)),
                         tokens=tokenizer.convert_ids_to_tokens(ids), token_scores=scores,
                         truncated=example.truncated, method=method)


# ---------------------------------------------------------------------------
# Electric: one pass per sentence
# ---------------------------------------------------------------------------


def _electric(model_or_path, tokenizer, vocab_file, do_lower_case, max_seq_length):
    from electra_tf.loading import PretrainedModel
    model, tokenizer, max_len, transformer = resolve(
        model_or_path, ("electric", "discriminator_head"), tokenizer, vocab_file,
        do_lower_case, max_seq_length)
    if isinstance(model, PretrainedModel):
        if not model.recipe.cloze_generator:
            raise InputError(f"{model.weights.source} is not an Electric model (no "
                             "generator_ltr/ and generator_rtl/ weights): its discriminator "
                             "output is not an energy; use method='mlm' with a generator")
        discriminator = model.discriminator
    else:  # a bare Keras discriminator: the caller vouches that it was trained as Electric
        discriminator = model
    check_max_seq_length(max_len, transformer.max_position_embeddings, error=InputError)
    return discriminator, tokenizer, max_len


def electric_scores(model_or_path, texts: Iterable[str], *, tokenizer=None,
                    vocab_file: str | None = None, do_lower_case: bool | None = None,
                    max_seq_length: int | None = None,
                    batch_size: int = 32) -> list:
    """Electric pseudo-log-likelihood scores: one forward pass per text (batched).

    Args:
      model_or_path: an Electric checkpoint (``<model_dir>/tf1`` of an
        ``electric_objective`` run), its :class:`~electra_tf.loading.PretrainedModel`,
        or a bare Keras discriminator trained as Electric (then give a tokenizer
        or vocab_file).
      texts: strings.
      tokenizer, vocab_file, do_lower_case, max_seq_length, batch_size: as
        :func:`electra_tf.detection.detect_replaced_tokens`.
    Returns:
      one :class:`SentenceScore` per text; ``token_scores[i]`` = -s at word-piece i.
    """
    texts = _texts(texts)
    setup = _electric(model_or_path, tokenizer, vocab_file, do_lower_case, max_seq_length)
    return _electric_with(*setup, texts, batch_size)


def _electric_with(discriminator, tokenizer, max_len: int, texts: list, batch_size: int):
    examples = [encode(tokenizer, t, max_len) for t in texts]
    if not examples:
        return []
    logits = discriminator_logits(discriminator, examples, batch_size)
    return [_result(tokenizer, t, e, -s[np.asarray(e.positions, np.int64)], "electric")
            for t, e, s in zip(texts, examples, logits)]


def electric_token_score(discriminator, example: Encoded, index: int) -> float:
    """-s_t of word-piece ``index`` from its own forward pass (one unpadded sequence)."""
    ids, mask, segments = pad_batch([example])
    out = discriminator({"input_ids": ids, "input_mask": mask, "segment_ids": segments},
                        training=False)
    return -float(np.asarray(out["logits"], np.float32)[0, example.positions[index]])


def electric_scores_brute_force(model_or_path, texts: Iterable[str], *, tokenizer=None,
                                vocab_file: str | None = None,
                                do_lower_case: bool | None = None,
                                max_seq_length: int | None = None) -> list:
    """The per-position computation: for every word-piece t, run the model and read s_t.

    One eager, unbatched, unpadded forward pass per word-piece (so n passes for
    n word-pieces). Electric's energies need no masking, so this equals
    :func:`electric_scores`; it exists to show that (and costs n times more).
    """
    texts = _texts(texts)
    discriminator, tokenizer, max_len = _electric(model_or_path, tokenizer, vocab_file,
                                                  do_lower_case, max_seq_length)
    results = []
    for text in texts:
        example = encode(tokenizer, text, max_len)
        scores = [electric_token_score(discriminator, example, i)
                  for i in range(len(example.positions))]
        results.append(_result(tokenizer, text, example, scores, "electric"))
    return results


# ---------------------------------------------------------------------------
# Masked-LM pseudo-log-likelihood: one pass per word-piece
# ---------------------------------------------------------------------------


def _masked_log_prob(model_ref):
    import tensorflow as tf
    spec = tf.TensorSpec([None, None], tf.int32)

    @tf.function(input_signature=[spec, spec, spec, spec, tf.TensorSpec([None], tf.int32)])
    def log_prob(input_ids, input_mask, segment_ids, positions, targets):
        out = model_ref()({"input_ids": input_ids, "input_mask": input_mask,
                         "segment_ids": segment_ids, "masked_lm_positions": positions},
                        training=False)
        log_probs = tf.nn.log_softmax(tf.cast(out["logits"][:, 0, :], tf.float32), axis=-1)
        return tf.gather(log_probs, targets, batch_dims=1)
    return log_prob


def mlm_pseudo_log_likelihood(model_or_path, texts: Iterable[str], *, tokenizer=None,
                              vocab_file: str | None = None,
                              do_lower_case: bool | None = None,
                              max_seq_length: int | None = None,
                              batch_size: int = 32) -> list:
    """Masked-LM pseudo-log-likelihood (slow reference): one pass per word-piece.

    For each word-piece t of a text, the text with x_t replaced by [MASK] goes
    through the masked LM and log softmax(logits_t)[x_t] is added to the score.
    The masked copies of all texts are batched (``batch_size`` copies per pass).

    Args:
      model_or_path: a checkpoint with a masked-LM generator (an ELECTRA
        ``<model_dir>/tf1`` export, an MLM-only run, a HF ``ElectraForMaskedLM``
        directory), its :class:`~electra_tf.loading.PretrainedModel`, or a bare
        :class:`~electra_tf.networks.generator.Generator`.
      other arguments: as :func:`electric_scores`.
    Returns:
      one :class:`SentenceScore` per text (``method="mlm"``).
    """
    texts = _texts(texts)
    setup = _mlm(model_or_path, tokenizer, vocab_file, do_lower_case, max_seq_length)
    return _mlm_with(*setup, texts, batch_size)


def _mlm(model_or_path, tokenizer, vocab_file, do_lower_case, max_seq_length):
    from electra_tf.loading import PretrainedModel
    from electra_tf.networks.electric import TwoTowerClozeGenerator
    model, tokenizer, max_len, transformer = resolve(
        model_or_path, ("generator",), tokenizer, vocab_file, do_lower_case, max_seq_length)
    if isinstance(model, PretrainedModel):
        generator, cloze = model.generator, model.recipe.cloze_generator
    else:  # a bare Keras generator
        generator, cloze = model, isinstance(model, TwoTowerClozeGenerator)
    if cloze:
        raise InputError("this checkpoint's generator is Electric's two-tower cloze model, "
                         "not a masked LM: score it with method 'electric'")
    check_max_seq_length(max_len, transformer.max_position_embeddings, error=InputError)
    return generator, tokenizer, max_len


def _mlm_with(generator, tokenizer, max_len: int, texts: list, batch_size: int):
    mask_id = tokenizer.special_ids["mask"]
    examples = [encode(tokenizer, t, max_len) for t in texts]
    rows, owners = [], []  # one masked copy per (text, word-piece)
    for i, e in enumerate(examples):
        for j, p in enumerate(e.positions):
            ids = list(e.input_ids)
            ids[p] = mask_id
            rows.append(Encoded(ids, e.segment_ids, [p], 0))
            owners.append((i, j, e.input_ids[p]))
    fn = compiled(generator, "mlm_log_prob", _masked_log_prob)
    scores = [np.zeros(len(e.positions), np.float64) for e in examples]
    for indices in batches_by_length(rows, batch_size):
        ids, mask, segments = pad_batch([rows[k] for k in indices])
        positions = np.asarray([rows[k].positions for k in indices], np.int32)
        targets = np.asarray([owners[k][2] for k in indices], np.int32)
        values = fn(ids, mask, segments, positions, targets).numpy()
        for k, v in zip(indices, values):
            scores[owners[k][0]][owners[k][1]] = v
    return [_result(tokenizer, t, e, s, "mlm") for t, e, s in zip(texts, examples, scores)]


def score_texts(model_or_path, texts: Iterable[str], method: str = "electric", **kwargs) -> list:
    """:func:`electric_scores` or :func:`mlm_pseudo_log_likelihood` by name."""
    if method == "electric":
        return electric_scores(model_or_path, texts, **kwargs)
    if method == "mlm":
        return mlm_pseudo_log_likelihood(model_or_path, texts, **kwargs)
    raise InputError(f"unknown scoring method {method!r}: use one of {', '.join(METHODS)}")


def _setup(method: str, model_or_path, **kwargs):
    """(network, tokenizer, max_seq_length, run function) of a scoring method."""
    if method == "electric":
        return (*_electric(model_or_path, **kwargs), _electric_with)
    if method == "mlm":
        return (*_mlm(model_or_path, **kwargs), _mlm_with)
    raise InputError(f"unknown scoring method {method!r}: use one of {', '.join(METHODS)}")


# ---------------------------------------------------------------------------
# Re-ranking
# ---------------------------------------------------------------------------


def rerank(group_ids: Sequence[str], scores: Sequence[SentenceScore],
           length_normalize: bool = False) -> list:
    """Groups scores by id (first-appearance order) and sorts each group, best first.

    Returns:
      ``[(group id, [(index into scores, SentenceScore), ...]), ...]``; ties keep
      the input order.
    """
    if len(group_ids) != len(scores):
        raise InputError(f"{len(group_ids)} group ids for {len(scores)} scores")
    groups: dict = {}
    for i, (gid, s) in enumerate(zip(group_ids, scores)):
        groups.setdefault(gid, []).append((i, s))
    key = (lambda item: -item[1].mean) if length_normalize else (lambda item: -item[1].score)
    return [(gid, sorted(items, key=key)) for gid, items in groups.items()]


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def _split_rerank_line(label: str, line: str):
    if "\t" not in line:
        raise InputError(f"{label}: --rerank expects 'id<TAB>sentence' lines, found no tab")
    gid, text = line.split("\t", 1)
    if "\t" in text:
        raise InputError(f"{label}: --rerank expects 'id<TAB>sentence', found more than one tab")
    return gid, text


def define_flags(flag_values) -> None:
    from absl import flags
    define_common_flags(flag_values)
    flags.DEFINE_enum("method", "electric", METHODS,
                      "electric: one pass (needs an Electric checkpoint); mlm: mask each "
                      "word-piece in turn (needs a generator / masked LM)",
                      flag_values=flag_values)
    flags.DEFINE_boolean("per_token", False, "print per-word-piece scores",
                         flag_values=flag_values)
    flags.DEFINE_boolean("rerank", False,
                         "input lines are 'id<TAB>sentence' (positional texts form one group "
                         "'args'): print each group sorted by score, best first",
                         flag_values=flag_values)
    flags.DEFINE_boolean("length_normalize", False,
                         "with --rerank, sort by the score per word-piece",
                         flag_values=flag_values)


def _main(args, positional: list) -> int:
    """Runs the command on the parsed flags ``args`` (absl FlagValues) and the texts."""
    items = gather_texts(positional, args.input_file)
    labels = [label for label, _ in items]
    with user_errors_as_one_line():
        if args.rerank:
            n_args = len(positional)
            pairs = [("args", t) if k < n_args else _split_rerank_line(label, t)
                     for k, (label, t) in enumerate(items)]
            group_ids, texts = [g for g, _ in pairs], [t for _, t in pairs]
        else:
            group_ids, texts = None, [t for _, t in items]
        with keras_precision(args.mixed_precision):
            network, tokenizer, max_len, run = _setup(
                args.method, args.checkpoint, tokenizer=None, vocab_file=args.vocab_file,
                do_lower_case=args.do_lower_case, max_seq_length=args.max_seq_length)
        results = run(network, tokenizer, max_len, texts, args.batch_size)
    for label, r in zip(labels, results):
        report_truncation(label, r.truncated, max_len)
    if args.rerank:
        if not args.json:
            print(f"id\trank\t{'mean' if args.length_normalize else 'score':>12}  "
                  f"{'tokens':>6}  text")
        for gid, ranked in rerank(group_ids, results, args.length_normalize):
            for rank, (i, r) in enumerate(ranked, 1):
                _print(r, labels[i], args, extra={"id": gid, "rank": rank},
                       prefix=f"{gid}\t{rank}\t")
    else:
        if not args.json:
            print(f"{'score':>12}  {'tokens':>6}  text")
        for label, r in zip(labels, results):
            _print(r, label, args)
    return 0


def _print(r: SentenceScore, label: str, args, extra=None, prefix: str = "") -> None:
    if args.json:
        record = {**(extra or {}), "source": label, **r.to_dict(per_token=args.per_token)}
        print(json.dumps(record, ensure_ascii=False))
        return
    cut = f"  [truncated: {r.truncated} word-piece(s) not scored]" if r.truncated else ""
    value = r.mean if args.rerank and args.length_normalize else r.score
    print(f"{prefix}{value:12.4f}  {r.num_tokens:>6}  {r.text}{cut}")
    if args.per_token:
        for tok, s in zip(r.tokens, r.token_scores):
            print(f"{'':>{len(prefix.expandtabs())}}    {s:12.4f}  {tok}")


def main(argv=None) -> int:
    """``python -m electra_tf.scoring [flags] [texts...]``; returns the exit status."""
    return cli.run(define_flags, _main, argv, user_errors=(InputError,), description=__doc__)


console_main = cli.console(main)

if __name__ == "__main__":
    sys.exit(main())
