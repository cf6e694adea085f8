r"""Learns a WordPiece vocab (or a SentencePiece model) from a text corpus.

WordPiece (default): words are split with the same BERT basic tokenizer that
electra_tf.tokenization uses, counted, and handed to tensorflow-text's
WordPiece vocab learner. The vocab starts with [PAD] [UNK] [CLS] [SEP] [MASK].

  python -m electra_tf.build_vocab --corpus 'data/corpus/*/wiki_*' \
      --output vocab.txt --vocab_size 30522 --do_lower_case

SentencePiece (--spm): trains a model (unigram by default) with [PAD]=0
[UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4 and writes <output>.model / <output>.vocab
(a trailing ".model" on --output is dropped first).

  python -m electra_tf.build_vocab --spm --corpus 'corpus/*.txt' \
      --output spm --vocab_size 32000

The corpus is plain text, one sentence or paragraph per line; lines that are
empty or look like WikiExtractor's <doc ...> / </doc> markers are skipped.
"""

import glob
import os
import sys
import time

from absl import flags
from absl import logging

from electra_tf import cli, tokenization
from electra_tf.io_utils import write_text_atomic
from electra_tf.tokenization import SPECIAL_TOKENS


def define_flags(flag_values):
    """The flags of ``python -m electra_tf.build_vocab``."""
    fv = {"flag_values": flag_values}
    flags.DEFINE_string("corpus", None, "Glob pattern(s) of the text files, comma-separated.",
                        **fv)
    flags.DEFINE_string("output", None,
                        "Output vocab file (WordPiece) or model prefix (--spm).", **fv)
    flags.DEFINE_integer("vocab_size", 30522, "Target vocabulary size.", **fv)
    flags.DEFINE_bool("do_lower_case", True,
                      "Lower-case the text (--nodo_lower_case for cased).", **fv)
    flags.DEFINE_bool("strip_accents", True,
                      "Strip accents when lower-casing (WordPiece only).", **fv)
    flags.DEFINE_integer("max_lines", 0,
                         "Read at most this many lines in all (0: no limit).", **fv)
    flags.DEFINE_bool("spm", False, "Train a SentencePiece model instead.", **fv)
    flags.DEFINE_enum("spm_model_type", "unigram", ["unigram", "bpe", "char", "word"],
                      "SentencePiece model type (--spm).", **fv)
    flags.DEFINE_float("character_coverage", 0.9995,
                       "SentencePiece character coverage (--spm).", **fv)
    flags.mark_flags_as_required(["corpus", "output"], flag_values=flag_values)


def corpus_files(patterns):
    """Sorted files matching comma-separated glob patterns; error if none."""
    files = []
    for pattern in [p.strip() for p in patterns.split(",") if p.strip()]:
        files.extend(f for f in glob.glob(os.path.expanduser(pattern)) if os.path.isfile(f))
    if not files:
        raise FileNotFoundError("No corpus file matches %r." % patterns)
    return sorted(set(files))


def iter_lines(files, max_lines=0):
    """Non-empty, stripped lines of the files (WikiExtractor markers skipped)."""
    count = 0
    for path in files:
        with open(path, "rb") as f:
            for raw in f:
                line = raw.decode("utf-8", "ignore").strip()
                if not line or line == "</doc>" or line.startswith("<doc "):
                    continue
                yield line
                count += 1
                if max_lines and count >= max_lines:
                    return


def _first_line_or_raise(files, max_lines):
    for line in iter_lines(files, max_lines):
        return line
    raise ValueError(
        "The corpus is empty (no non-empty text line in %d file(s):"
        " %s)." % (len(files), ", ".join(files[:5]))
    )


def count_words(lines, do_lower_case=True, strip_accents=True):
    """Counts BERT basic-tokenizer words."""
    basic = tokenization.BasicTokenizer(do_lower_case, strip_accents)
    counts = {}
    for line in lines:
        for word in basic.tokenize(line):
            counts[word] = counts.get(word, 0) + 1
    return counts


def build_wordpiece_vocab(
    files, vocab_size=30522, do_lower_case=True, strip_accents=True, max_lines=0, **learn_params
):
    """Returns the learned vocab (list of tokens, special tokens first)."""
    _first_line_or_raise(files, max_lines)
    from tensorflow_text.tools.wordpiece_vocab import (  # pylint: disable=g-import-not-at-top
        wordpiece_tokenizer_learner_lib as learner)

    started = time.time()
    counts = count_words(iter_lines(files, max_lines), do_lower_case, strip_accents)
    # The learner reports nothing while it searches its count threshold (a full learning
    # pass per probe), so say what is happening and that it may take long.
    print(f"counted {len(counts):,} distinct words in {time.time() - started:.0f}s; learning "
          f"{vocab_size:,} word-pieces (tensorflow-text's learner; minutes to an hour, "
          "more distinct words take longer; --max_lines reads fewer lines)",
          file=sys.stderr, flush=True)
    vocab = learner.learn(sorted(counts.items()), vocab_size, list(SPECIAL_TOKENS), **learn_params)
    assert tuple(vocab[: len(SPECIAL_TOKENS)]) == SPECIAL_TOKENS, vocab[:5]
    return _fit_vocab_size(vocab, vocab_size)


def _fit_vocab_size(vocab, vocab_size):
    """Drops the rarest multi-character tokens if the learner overshot.

    The learner's threshold search can end above the target size (small
    corpora); its output lists the reserved tokens, then the single
    characters, then the learned tokens by decreasing count. Single characters
    (with and without "##") are kept so that every word stays spellable.
    """
    excess = len(vocab) - vocab_size
    if excess <= 0:
        return vocab

    def essential(token):
        return (
            token in SPECIAL_TOKENS
            or len(token) == 1
            or (token.startswith("##") and len(token) == 3)
        )

    drop = set()
    for token in reversed(vocab):
        if len(drop) == excess:
            break
        if not essential(token):
            drop.add(token)
    if len(drop) < excess:
        logging.warning(
            "The alphabet alone needs %d tokens (> --vocab_size %d).",
            len(vocab) - len(drop),
            vocab_size,
        )
    logging.info("Learner returned %d tokens; dropped the %d rarest.", len(vocab), len(drop))
    return [t for t in vocab if t not in drop]


def write_vocab(vocab, path):
    """One token per line (creates the directory; never a half-written file)."""
    write_text_atomic(path, "".join(token + "\n" for token in vocab))


def train_sentencepiece(
    files,
    model_prefix,
    vocab_size=32000,
    do_lower_case=True,
    model_type="unigram",
    character_coverage=0.9995,
    max_lines=0,
):
    """Trains a SentencePiece model; returns the path of the .model file."""
    _first_line_or_raise(files, max_lines)
    import sentencepiece as spm  # pylint: disable=g-import-not-at-top

    if model_prefix.endswith(".model"):
        model_prefix = model_prefix[: -len(".model")]
    os.makedirs(os.path.dirname(os.path.abspath(model_prefix)), exist_ok=True)
    spm.SentencePieceTrainer.Train(
        sentence_iterator=iter_lines(files, max_lines),
        model_prefix=model_prefix,
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=character_coverage,
        normalization_rule_name="nmt_nfkc_cf" if do_lower_case else "nmt_nfkc",
        pad_id=0,
        pad_piece="[PAD]",
        unk_id=1,
        unk_piece="[UNK]",
        bos_id=-1,
        eos_id=-1,
        # Control symbols: reserved ids that text never turns into, as with
        # WordPiece, where "[SEP]" in the text is "[", "sep", "]".
        control_symbols=["[CLS]", "[SEP]", "[MASK]"],
        minloglevel=2,
    )
    return model_prefix + ".model"


def _main(FLAGS, positional) -> int:
    if positional:
        raise cli.UsageError("unexpected arguments: %s" % " ".join(positional))
    files = corpus_files(FLAGS.corpus)
    if FLAGS.spm:
        path = train_sentencepiece(files, FLAGS.output, FLAGS.vocab_size, FLAGS.do_lower_case,
                                   FLAGS.spm_model_type, FLAGS.character_coverage,
                                   FLAGS.max_lines)
        print("Wrote %s" % path)
    else:
        vocab = build_wordpiece_vocab(files, FLAGS.vocab_size, FLAGS.do_lower_case,
                                      FLAGS.strip_accents, FLAGS.max_lines)
        write_vocab(vocab, FLAGS.output)
        print("Wrote %s (%d tokens)" % (FLAGS.output, len(vocab)))
    return 0


def main(argv=None) -> int:
    """Builds the vocab ``argv`` asks for; returns the exit status."""
    return cli.run(define_flags, _main, argv, description=__doc__,
                   user_errors=(FileNotFoundError, ValueError, RuntimeError))


console_main = cli.console(main)

if __name__ == "__main__":
    sys.exit(main())
