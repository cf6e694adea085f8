"""The command line of ``build_pretraining_dataset.py`` / ``electra-build-data``.

Builds ELECTRA pre-training TFRecords from raw text.

    python build_pretraining_dataset.py                 # embedded demo corpus
    python build_pretraining_dataset.py --corpus_dir=wiki/ --output_dir=out \
        --num_processes=2
    python build_pretraining_dataset.py --tfds_dataset=wikipedia/20230601.en \
        --tfds_data_dir=~/tensorflow_datasets

Each record holds `input_ids`, `input_mask` and `segment_ids` (int64, length
--max_seq_length), in files `pretrain_data.tfrecord-<i>-of-<n>`, described by
`pretrain_data.json` beside them (max_seq_length, vocab, casing, counts), which
pre-training checks against its own settings. The packing follows the original
ELECTRA builder; see electra_tf/data/corpus.py for the formats read and
electra_tf/data/build.py for the one deliberate difference (seeded, per-file
random streams, so the output does not depend on --num_processes).

Input that yields no example (empty, whitespace-only or binary files) is an
error and writes nothing; a binary-looking file is skipped and a line over
1 MiB truncated, each with one warning line. Only regular files are read
(symbolic links followed): a named pipe, socket, device or dangling link is
skipped with one warning line, and a file that cannot be read to its end (a
truncated or corrupt .gz/.bz2/.xz, a permission or I/O error) is one warning line
naming it, its text up to there used; --strict makes each of these an error.
An --output_dir holding a run, a checkpoint or a model is refused. Temporary shards of a build that
was killed are removed by the next build in the same --output_dir; worker
processes (--num_processes > 1) stop when the builder process dies.

Differences from the original command line: flags use underscores; the
output directory is not deleted (existing shards are refused unless
--overwrite, which replaces only those files); --blanks_separate_docs is a
real boolean (`--noblanks_separate_docs` or `--blanks_separate_docs=false`
turns it off; the original's "any non-empty string is true" quirk is not
reproduced).
"""

import os
import signal
import sys
from typing import Optional, Sequence

from absl import flags

from electra_tf import cli
from electra_tf.data import build, corpus
from electra_tf.data.errors import PretrainingDataError


def define_flags(flag_values: flags.FlagValues) -> None:
    """Defines the flags of ``build_pretraining_dataset.py`` on ``flag_values``."""
    fv = {"flag_values": flag_values}
    flags.DEFINE_string(
        "corpus_dir",
        None,
        "Input: a directory (walked recursively, hidden files skipped), a file, "
        "or comma-separated globs. Default: the embedded Wikipedia excerpt in "
        "electra_tf/assets/corpus.", **fv)
    flags.DEFINE_enum(
        "input_format",
        "auto",
        list(corpus.INPUT_FORMATS),
        "auto: tar archives are openwebtext, files whose first line "
        "starts with <doc are wikiextractor, the rest text.", **fv)
    flags.DEFINE_string("vocab_file", None,
                        "WordPiece vocab. Default: the bundled BERT uncased vocab.", **fv)
    flags.DEFINE_string("spm_model", None,
                        "SentencePiece model to use instead of a WordPiece vocab.", **fv)
    flags.DEFINE_string(
        "output_dir",
        os.path.join("data", "pretrain_tfrecords"),
        "Where the TFRecord shards are written.", **fv)
    flags.DEFINE_integer("max_seq_length", 128, "Tokens per example (L).", **fv)
    flags.DEFINE_integer("num_processes", 1, "Worker processes (> 1 runs them in parallel).", **fv)
    flags.DEFINE_integer(
        "num_out_files",
        1000,
        "Number of output shards. When not given and the embedded corpus is used, "
        "%d." % corpus.EMBEDDED_CORPUS_NUM_OUT_FILES, **fv)
    flags.DEFINE_boolean(
        "blanks_separate_docs",
        True,
        "In text input, a blank line ends a document (otherwise "
        "blank lines are skipped and each file is a document).", **fv)
    flags.DEFINE_boolean("do_lower_case", True, "Lower-case the input.", **fv)
    flags.DEFINE_boolean("strip_accents", True,
                         "Strip accents (only together with lower-casing).", **fv)
    flags.DEFINE_boolean(
        "fast_tokenizer",
        True,
        "Use the tensorflow-text tokenizer (same ids); --nofast_tokenizer uses the "
        "pure-Python one.", **fv)
    flags.DEFINE_integer("seed", 0, "Seed of the random packing decisions.", **fv)
    flags.DEFINE_boolean(
        "overwrite",
        False,
        "Replace existing pretrain_data.tfrecord-* files (and pretrain_data.json) in "
        "--output_dir and remove every temporary .pretrain_data.tfrecord-*.tmp-* "
        "file there (nothing else is touched; without --overwrite only those of "
        "builds that are no longer running are removed).", **fv)
    flags.DEFINE_boolean(
        "strict",
        False,
        "Stop with an error on any input entry that is not a readable regular file "
        "(named pipe, dangling link, ...) or that fails while it is read (truncated "
        "or corrupt compression, permission, I/O error), instead of skipping it with "
        "one warning line.", **fv)
    flags.DEFINE_boolean("progress", True, "Show a progress bar on stderr.", **fv)
    flags.DEFINE_string(
        "tfds_dataset",
        None,
        "Read a prepared tensorflow-datasets text corpus instead "
        "of --corpus_dir, e.g. wikipedia/20230601.en. Never "
        "downloads.", **fv)
    flags.DEFINE_string("tfds_split", "train", "Split of --tfds_dataset.", **fv)
    flags.DEFINE_string("tfds_text_key", "text",
                        "Feature of --tfds_dataset holding the text.", **fv)
    flags.DEFINE_string(
        "tfds_data_dir", None,
        "tfds data directory (default $TFDS_DATA_DIR or ~/tensorflow_datasets).", **fv)


def run(FLAGS: flags.FlagValues):
    """Parsed flags into calls of electra_tf.data; returns the stats."""
    if FLAGS.tfds_dataset and FLAGS.corpus_dir:
        raise PretrainingDataError("give either --corpus_dir or --tfds_dataset, not both")
    for flag in ("vocab_file", "spm_model"):
        path = FLAGS[flag].value
        if path and "://" not in path and not os.path.isfile(path):
            raise PretrainingDataError("--%s: no such file '%s'" % (flag, path))
    num_out_files = FLAGS.num_out_files
    if FLAGS.tfds_dataset:
        units = corpus.tfds_corpus_units(
            FLAGS.tfds_dataset, FLAGS.tfds_split, FLAGS.tfds_data_dir, FLAGS.tfds_text_key
        )
        source = "tfds:%s:%s" % (FLAGS.tfds_dataset, FLAGS.tfds_split)
    elif FLAGS.corpus_dir:
        units = corpus.find_corpus_files(FLAGS.corpus_dir, strict=FLAGS.strict)
        source = FLAGS.corpus_dir
    else:
        units = corpus.default_corpus_files()
        source = "embedded corpus %s" % corpus.EMBEDDED_CORPUS_DIR
        if not FLAGS["num_out_files"].present:
            num_out_files = corpus.EMBEDDED_CORPUS_NUM_OUT_FILES
    tokenizer_spec = build.TokenizerSpec(
        vocab_file=FLAGS.vocab_file,
        spm_model=FLAGS.spm_model,
        do_lower_case=FLAGS.do_lower_case,
        strip_accents=FLAGS.strip_accents,
        fast=FLAGS.fast_tokenizer,
    )
    print(
        "reading %d input(s) from %s; writing %d shard(s) to %s"
        % (len(units), source, num_out_files, FLAGS.output_dir),
        file=sys.stderr,
    )
    stats = build.build_pretraining_dataset(
        units,
        FLAGS.output_dir,
        tokenizer_spec,
        max_seq_length=FLAGS.max_seq_length,
        num_out_files=num_out_files,
        num_processes=FLAGS.num_processes,
        seed=FLAGS.seed,
        blanks_separate_docs=FLAGS.blanks_separate_docs,
        input_format=FLAGS.input_format,
        overwrite=FLAGS.overwrite,
        show_progress=FLAGS.progress,
        source=source,
        strict=FLAGS.strict,
    )
    for line in build.format_summary(stats, FLAGS.output_dir):
        print(line, file=sys.stderr)
    return stats


def _interrupt(signum, frame):
    del signum, frame
    raise KeyboardInterrupt()


def _main(FLAGS: flags.FlagValues, positional: Sequence[str]) -> int:
    if positional:
        raise cli.UsageError(f"unexpected arguments: {' '.join(positional)}")
    # A terminated build cleans up like an interrupted one.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        run(FLAGS)
    except KeyboardInterrupt:
        print("interrupted; unfinished shards were removed", file=sys.stderr)
        return 130
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Builds the shards ``argv`` (default ``sys.argv``) asks for; returns the exit status."""
    return cli.run(define_flags, _main, argv, user_errors=(PretrainingDataError,),
                   description=__doc__)


console_main = cli.console(main)
