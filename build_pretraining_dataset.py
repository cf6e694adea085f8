"""Builds ELECTRA pre-training TFRecords from raw text.

    python build_pretraining_dataset.py                 # embedded demo corpus
    python build_pretraining_dataset.py --corpus_dir=wiki/ --output_dir=out \
        --num_processes=2
    python build_pretraining_dataset.py --tfds_dataset=wikipedia/20230601.en \
        --tfds_data_dir=~/tensorflow_datasets

Each record holds `input_ids`, `input_mask` and `segment_ids` (int64, length
--max_seq_length), in files `pretrain_data.tfrecord-<i>-of-<n>`. The packing
follows the original ELECTRA builder; see electra_tf/data/pretraining_data.py
for the formats read and the one deliberate difference (seeded, per-file
random streams, so the output does not depend on --num_processes).

Input that yields no example (empty, whitespace-only or binary files) is an
error and writes nothing; a binary-looking file is skipped and a line over
1 MiB truncated, each with one warning line. Temporary shards of a build that
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

from absl import app
from absl import flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from electra_tf.data import pretraining_data as pd  # noqa: E402  pylint: disable=g-import-not-at-top

FLAGS = flags.FLAGS

flags.DEFINE_string(
    "corpus_dir",
    None,
    "Input: a directory (walked recursively, hidden files skipped), a file, "
    "or comma-separated globs. Default: the embedded Wikipedia excerpt in "
    "electra_tf/assets/corpus.",
)
flags.DEFINE_enum(
    "input_format",
    "auto",
    list(pd.INPUT_FORMATS),
    "auto: tar archives are openwebtext, files whose first line "
    "starts with <doc are wikiextractor, the rest text.",
)
flags.DEFINE_string("vocab_file", None, "WordPiece vocab. Default: the bundled BERT uncased vocab.")
flags.DEFINE_string("spm_model", None, "SentencePiece model to use instead of a WordPiece vocab.")
flags.DEFINE_string(
    "output_dir",
    os.path.join("data", "pretrain_tfrecords"),
    "Where the TFRecord shards are written.",
)
flags.DEFINE_integer("max_seq_length", 128, "Tokens per example (L).")
flags.DEFINE_integer("num_processes", 1, "Worker processes (> 1 runs them in parallel).")
flags.DEFINE_integer(
    "num_out_files",
    1000,
    "Number of output shards. When not given and the embedded corpus is used, "
    "%d." % pd.EMBEDDED_CORPUS_NUM_OUT_FILES,
)
flags.DEFINE_boolean(
    "blanks_separate_docs",
    True,
    "In text input, a blank line ends a document (otherwise "
    "blank lines are skipped and each file is a document).",
)
flags.DEFINE_boolean("do_lower_case", True, "Lower-case the input.")
flags.DEFINE_boolean("strip_accents", True, "Strip accents (only together with lower-casing).")
flags.DEFINE_boolean(
    "fast_tokenizer",
    True,
    "Use the tensorflow-text tokenizer (same ids); --nofast_tokenizer uses the pure-Python one.",
)
flags.DEFINE_integer("seed", 0, "Seed of the random packing decisions.")
flags.DEFINE_boolean(
    "overwrite",
    False,
    "Replace existing pretrain_data.tfrecord-* files in "
    "--output_dir and remove every temporary .pretrain_data.tfrecord-*.tmp-* "
    "file there (nothing else is touched; without --overwrite only those of "
    "builds that are no longer running are removed).",
)
flags.DEFINE_boolean("progress", True, "Show a progress bar on stderr.")
flags.DEFINE_string(
    "tfds_dataset",
    None,
    "Read a prepared tensorflow-datasets text corpus instead "
    "of --corpus_dir, e.g. wikipedia/20230601.en. Never "
    "downloads.",
)
flags.DEFINE_string("tfds_split", "train", "Split of --tfds_dataset.")
flags.DEFINE_string("tfds_text_key", "text", "Feature of --tfds_dataset holding the text.")
flags.DEFINE_string(
    "tfds_data_dir", None, "tfds data directory (default $TFDS_DATA_DIR or ~/tensorflow_datasets)."
)


def run():
    """Parses flags into calls of electra_tf.data; returns the stats."""
    if FLAGS.tfds_dataset and FLAGS.corpus_dir:
        raise pd.PretrainingDataError("give either --corpus_dir or --tfds_dataset, not both")
    for flag in ("vocab_file", "spm_model"):
        path = FLAGS[flag].value
        if path and "://" not in path and not os.path.isfile(path):
            raise pd.PretrainingDataError("--%s: no such file '%s'" % (flag, path))
    num_out_files = FLAGS.num_out_files
    if FLAGS.tfds_dataset:
        units = pd.tfds_corpus_units(
            FLAGS.tfds_dataset, FLAGS.tfds_split, FLAGS.tfds_data_dir, FLAGS.tfds_text_key
        )
        source = "tfds:%s:%s" % (FLAGS.tfds_dataset, FLAGS.tfds_split)
    elif FLAGS.corpus_dir:
        units = pd.find_corpus_files(FLAGS.corpus_dir)
        source = FLAGS.corpus_dir
    else:
        units = pd.default_corpus_files()
        source = "embedded corpus %s" % pd.EMBEDDED_CORPUS_DIR
        if not FLAGS["num_out_files"].present:
            num_out_files = pd.EMBEDDED_CORPUS_NUM_OUT_FILES
    tokenizer_spec = pd.TokenizerSpec(
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
    stats = pd.build_pretraining_dataset(
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
    )
    for line in pd.format_summary(stats, FLAGS.output_dir):
        print(line, file=sys.stderr)
    return stats


def _interrupt(signum, frame):
    del signum, frame
    raise KeyboardInterrupt()


def main(argv):
    # A terminated run cleans up like an interrupted one.
    signal.signal(signal.SIGTERM, _interrupt)
    if len(argv) > 1:
        print("error: unexpected arguments: %s" % " ".join(argv[1:]), file=sys.stderr)
        sys.exit(2)
    try:
        run()
    except pd.PretrainingDataError as e:
        print("error: %s" % e, file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted; unfinished shards were removed", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    app.run(main)
