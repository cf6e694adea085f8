"""Fine-tunes a pre-trained ELECTRA discriminator on GLUE, QA or tagging tasks.

    python run_finetuning.py --data_dir=$DATA --model_name=electra_small --task_names=mnli
        Reads $DATA/finetuning_data/mnli/{train,dev_matched}.tsv, starts from
        $DATA/models/electra_small: a pre-training run directory (its newest complete
        ckpt-N, also while the run is still training), a Google release directory or a
        transformers directory; a directory holding only our discriminator/ export starts
        from that. Trains in .../finetuning_models/mnli_model_<trial>, writes
        .../results/mnli_results.{txt,json} (with the init checkpoint and its step).
        --init_checkpoint=none: no pre-trained weights (random initialisation, a baseline).

A run holds .../finetuning_models/.<tasks>_model.lock: a second run of the same tasks on
the same model stops with one line naming the holder. Each trial is checkpointed while it
trains (--checkpoint_every_minutes, save_checkpoints_steps), on SIGTERM (exit 143) and on
Ctrl-C (exit 130); re-running the same command resumes the interrupted trial at its step
(with the result of an uninterrupted run) and evaluates finished trials without training
them again. GLUE files are checked against the task's column layout
(--nocheck_glue_columns reads them by position, as the original).

Hyperparameters: --hparams (JSON dict or .json path, keys of the original FinetuningConfig;
a task family's settings also as its section, e.g. {"qa": {"doc_stride": 64}});
per-task and per-size defaults follow the original (configs/finetuning.json); --strategy,
--jit_compile and --mixed_precision as in run_pretraining.py.
The installed command ``electra-finetune`` is the same as ``python run_finetuning.py``.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

from absl import flags

from electra_tf import cli
from electra_tf.config import OPTIMIZERS

# TensorFlow is imported inside the functions: after cli.run has quieted its start-up.

# Flags that override a FinetuningConfig field when given (None = the config decides).
_CONFIG_FLAGS = ("num_trials", "do_train", "do_eval", "write_test_outputs", "optimizer",
                 "gradient_accumulation_steps")


def define_flags(flag_values: flags.FlagValues) -> None:
    """Defines the flags of ``run_finetuning.py`` / ``electra-finetune`` on ``flag_values``."""
    from electra_tf.training.runtime import define_runtime_flags
    fv = {"flag_values": flag_values}
    flags.DEFINE_string("data_dir", "data", "Holds finetuning_data/<task>/ and "
                        "models/<model_name>.", **fv)
    flags.DEFINE_string("model_name", None, "Pre-trained model under <data_dir>/models/; "
                        "default electra_<model_size>.", **fv)
    flags.DEFINE_string("model_size", "small", "small, base or large (must match the "
                        "checkpoint).", **fv)
    flags.DEFINE_list("task_names", None, "Comma-separated tasks, e.g. mnli or cola,sst.", **fv)
    flags.DEFINE_string("init_checkpoint", None, "Checkpoint to start from: anything "
                        "electra_tf.loading.read_weights reads (a pre-training run directory or "
                        "its ckpt-N, a TF1 checkpoint such as <run>/discriminator, a "
                        "transformers directory); default <data_dir>/models/<model_name>. "
                        "'none': no pre-trained weights, random initialisation (a "
                        "no-pre-training baseline).", **fv)
    flags.DEFINE_string("hparams", None, "JSON dict or path to a .json file of hparams.", **fv)
    flags.DEFINE_integer("num_trials", None, "Number of train+eval runs (results per trial).",
                         **fv)
    flags.DEFINE_boolean("do_train", None, "Train (default true).", **fv)
    flags.DEFINE_boolean("do_eval", None, "Evaluate on dev after training (default true).", **fv)
    flags.DEFINE_boolean("write_test_outputs", None, "Write GLUE leaderboard TSVs / SQuAD 2.0 "
                         "test predictions under <model>/results/test_predictions/.", **fv)
    flags.DEFINE_enum("optimizer", None, list(OPTIMIZERS), "adamw: the original "
                      "AdamWeightDecay (default); lamb: LAMB, for large batches.", **fv)
    flags.DEFINE_integer("gradient_accumulation_steps", None, "Sum k micro-batches of "
                         "train_batch_size / k examples into one update.", **fv)
    flags.DEFINE_integer("seed", 0, "Seed of head initialisation, shuffling and dropout.", **fv)
    define_runtime_flags(flag_values)
    flags.DEFINE_enum("data_source", "tsv", ["tsv", "tfds"], "GLUE from the TSV files of "
                      "finetuning_data/<task>/ or from tensorflow-datasets' glue/* "
                      "(downloads).", **fv)
    flags.DEFINE_string("tfds_data_dir", None, "tensorflow-datasets data dir for "
                        "--data_source=tfds.", **fv)
    flags.DEFINE_boolean("check_glue_columns", True, "Check each GLUE file's first line "
                         "against the task's column layout (a header's names; CoLA's column "
                         "count); --nocheck_glue_columns reads the columns by position, as "
                         "the original does.", **fv)
    flags.DEFINE_float("checkpoint_every_minutes", 10.0, "Also checkpoint a trial this often "
                       "while it trains (single-process runs; 0: only every "
                       "save_checkpoints_steps steps and on SIGTERM / Ctrl-C).", **fv)
    flags.DEFINE_integer("log_every_steps", 50, "Progress line cadence (steps).", **fv)


def default_init_checkpoint(pretrained: str) -> str:
    """The model directory itself when it holds weights (a run's newest complete ckpt-N, a
    release checkpoint, a transformers directory), else its discriminator/ export."""
    from electra_tf import checkpoints, formats
    from electra_tf.formats import files
    export = os.path.join(pretrained, "discriminator")
    if not os.path.isdir(export):
        return pretrained
    try:
        if formats.detect_format(pretrained) != "tf1":
            return pretrained
        files.resolve_checkpoint(pretrained)
        return pretrained
    except checkpoints.CheckpointError:
        return export


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs ``run_finetuning.py`` with ``argv`` (default ``sys.argv``); returns the exit
    status (1 for a user error, 128 + signal after SIGTERM, 130 on Ctrl-C)."""
    cli.quiet_tensorflow_startup()  # the error types below import TensorFlow
    from electra_tf.checkpoints import CheckpointError
    from electra_tf.config import ConfigError
    from electra_tf.finetuning.task import TaskDataError
    from electra_tf.training.run_directory import RunDirectoryError
    from electra_tf.training.strategy import StrategyError
    return cli.run(define_flags, _main, argv, description=__doc__,
                   user_errors=(ConfigError, CheckpointError, TaskDataError, StrategyError,
                                RunDirectoryError, NotImplementedError, ValueError))


console_main = cli.console(main)


def _main(FLAGS: flags.FlagValues, positional: Sequence[str]) -> int:
    """Fine-tunes from parsed flags; returns the exit status."""
    if positional:
        raise cli.UsageError(f"unexpected arguments: {' '.join(positional)}")
    if FLAGS.log_every_steps <= 0:
        raise cli.UsageError(f"--log_every_steps must be positive, got {FLAGS.log_every_steps}")
    cli.quiet_absl_logging()
    from electra_tf.config import FinetuningConfig
    from electra_tf.training import finetune
    from electra_tf.training.runtime import runtime_options
    overrides = {name: FLAGS[name].value for name in _CONFIG_FLAGS
                 if FLAGS[name].value is not None}
    config = FinetuningConfig.from_preset(FLAGS.model_size, FLAGS.task_names, FLAGS.hparams,
                                          **overrides)
    pretrained = os.path.join(FLAGS.data_dir, "models",
                              FLAGS.model_name or f"electra_{config.model_size}")
    init = FLAGS.init_checkpoint
    if init is None:
        init = default_init_checkpoint(pretrained)
    elif init.lower() == "none":
        init = None  # the driver says "no pre-trained weights ...: random initialisation"
    tasks = ",".join(config.task_names)
    vocab = os.path.join(pretrained, "vocab.txt")  # else the init checkpoint's, else bundled
    options = finetune.FinetuneOptions(
        data_dir=FLAGS.data_dir,
        model_dir=os.path.join(pretrained, "finetuning_models", f"{tasks}_model"),
        results_dir=os.path.join(pretrained, "results"),
        preprocessed_dir=os.path.join(pretrained, "finetuning_tfrecords", f"{tasks}_tfrecords"),
        init_checkpoint=init, vocab_file=vocab if os.path.exists(vocab) else None,
        seed=FLAGS.seed, **runtime_options(FLAGS),
        data_source=FLAGS.data_source, tfds_data_dir=FLAGS.tfds_data_dir,
        log_every_steps=FLAGS.log_every_steps, check_glue_columns=FLAGS.check_glue_columns,
        checkpoint_minutes=FLAGS.checkpoint_every_minutes)
    try:
        finetune.run_finetuning(config, options)
    except finetune.Terminated as e:  # SIGTERM: the trial being trained was saved
        return 128 + e.signum  # the usual status of a process ended by a signal
    return 0
