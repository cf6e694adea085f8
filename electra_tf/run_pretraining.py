"""Pre-trains ELECTRA (or Electric, or a plain masked LM) under tf.distribute.

    python run_pretraining.py --model_size=small
        Quick start: no --data_dir, so it works in ./data, builds TFRecords from the
        corpus bundled in the package if needed, and applies configs/quickstart.json
        (ELECTRA-Small, batch 32, 100 steps: a few minutes on a laptop CPU).

    python run_pretraining.py --data_dir=$DATA --model_name=electra_small_owt
        The paper's ELECTRA-Small run (configs/small.json: 1M steps, batch 128) on
        $DATA/pretrain_tfrecords/pretrain_data.tfrecord*; checkpoints and exports in
        $DATA/models/electra_small_owt. Re-running the same command resumes.

    python run_pretraining.py --data_dir=$DATA --model_name=... --do_eval
        Evaluation metrics of the latest checkpoint, written to <model_dir>/results/.

Hyperparameters: --hparams (JSON dict or path to a .json file, keys of the original
PretrainingConfig) plus direct flags for the common ones; direct flags win.
The installed command ``electra-pretrain`` is the same as ``python run_pretraining.py``.
"""

from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

from absl import flags

from electra_tf import cli
from electra_tf.config import (OPTIMIZERS, ConfigError, PretrainingConfig, load_preset,
                               parse_hparams)

# TensorFlow is imported inside the functions: after cli.run has quieted its start-up.
DEFAULT_DATA_DIR = "data"

# Common hyperparameters that get a flag of their own; None = not given (the config decides).
_HPARAM_FLAGS = {
    "num_train_steps": (flags.DEFINE_integer, "Total training steps (also the decay horizon)."),
    "train_batch_size": (flags.DEFINE_integer, "Global batch size of one update."),
    "gradient_accumulation_steps": (flags.DEFINE_integer, "Sum the gradients of k "
                                    "micro-batches (train_batch_size / k examples each) into "
                                    "one update: the batch of train_batch_size with the memory "
                                    "of a micro-batch."),
    "optimizer": (lambda name, default, help_text, flag_values: flags.DEFINE_enum(
        name, default, list(OPTIMIZERS), help_text, flag_values=flag_values),
        "adamw: the original AdamWeightDecay (default); lamb: LAMB with a per-layer trust "
        "ratio, for large batches."),
    "learning_rate": (flags.DEFINE_float, "Peak learning rate."),
    "num_warmup_steps": (flags.DEFINE_integer, "Linear warm-up steps."),
    "max_seq_length": (flags.DEFINE_integer, "Sequence length of the TFRecords."),
    "mask_prob": (flags.DEFINE_float, "Fraction of tokens masked/replaced."),
    "generator_hidden_size": (flags.DEFINE_float, "Generator width as a fraction of the "
                              "discriminator's (1.0 continues the released small model)."),
    "save_checkpoints_steps": (flags.DEFINE_integer, "Checkpoint every N steps."),
    "keep_checkpoint_max": (flags.DEFINE_integer, "Most recent checkpoints kept (0 = all)."),
    "num_eval_steps": (flags.DEFINE_integer, "Batches evaluated by --do_eval."),
    "eval_batch_size": (flags.DEFINE_integer, "Batch size of --do_eval (any size; independent "
                        "of train_batch_size)."),
    "electric_objective": (flags.DEFINE_boolean, "Train Electric (also pass "
                           "--noelectra_objective)."),
    "electra_objective": (flags.DEFINE_boolean, "Replaced-token detection (default true)."),
    "debug": (flags.DEFINE_boolean, "The original's debug preset: tiny model, 20 steps."),
}


def define_flags(flag_values: flags.FlagValues) -> None:
    """Defines the flags of ``run_pretraining.py`` / ``electra-pretrain`` on ``flag_values``."""
    from electra_tf.training.pretrain import RunOptions
    from electra_tf.training.runtime import define_runtime_flags
    defaults = RunOptions(model_dir="", pretrain_tfrecords="")
    fv = {"flag_values": flag_values}
    flags.DEFINE_string("model_size", "small", "Preset in configs/: small, base or large.", **fv)
    flags.DEFINE_string("data_dir", None,
                        "Holds pretrain_tfrecords/ and models/ (the original layout). Not "
                        "given (nor --pretrain_tfrecords): quick start in ./data with "
                        "configs/quickstart.json.", **fv)
    flags.DEFINE_string("model_name", None, "Run name; model dir is <data_dir>/models/<name>. "
                        "Default: electra_<model_size>.", **fv)
    flags.DEFINE_string("model_dir", None, "Overrides <data_dir>/models/<model_name>.", **fv)
    flags.DEFINE_string("pretrain_tfrecords", None, "Comma-separated globs; default "
                        "<data_dir>/pretrain_tfrecords/pretrain_data.tfrecord*.", **fv)
    flags.DEFINE_string("vocab_file", None, "Vocab of the records; default <data_dir>/vocab.txt "
                        "if it exists, else the bundled BERT uncased vocab.", **fv)
    flags.DEFINE_string("hparams", None, "JSON dict or path to a .json file of hparams.", **fv)
    flags.DEFINE_boolean("do_eval", False, "Evaluate the latest checkpoint instead of training.",
                         **fv)
    flags.DEFINE_string("eval_checkpoint", None, "With --do_eval: evaluate this checkpoint of "
                        "the run (e.g. ckpt-5000, or a path) instead of the latest.", **fv)
    flags.DEFINE_boolean("eval_all_checkpoints", False,
                         "Evaluate every ckpt-N of the run not evaluated yet into one learning "
                         "curve: <model_dir>/results/learning_curve.json and TensorBoard events "
                         "in <model_dir>/eval (implies --do_eval; re-run to extend it).", **fv)
    for name, (define, help_text) in _HPARAM_FLAGS.items():
        define(name, None, help_text, flag_values=flag_values)
    define_runtime_flags(flag_values)
    flags.DEFINE_integer("seed", defaults.seed, "Seed of initialisation, masking, sampling, data.",
                         **fv)
    flags.DEFINE_boolean("deterministic", defaults.deterministic,
                         "Also fix the input interleave order (exactly repeatable runs).", **fv)
    flags.DEFINE_integer("log_every_steps", defaults.log_every_steps,
                         "Steps between progress lines (and records of the run's JSON "
                         "training log, <model_dir>/train_log.jsonl).", **fv)
    flags.DEFINE_string("init_checkpoint", defaults.init_checkpoint,
                        "Start from a TF1-name checkpoint (e.g. Google's electra_small "
                        "directory): weights, Adam slots if present, and its global step.", **fv)


def _config(FLAGS, quickstart: bool) -> PretrainingConfig:
    use_quickstart = quickstart and not FLAGS.debug
    hparams = dict(load_preset("quickstart")["pretraining"]) if use_quickstart else {}
    hparams.update(parse_hparams(FLAGS.hparams))
    for name in _HPARAM_FLAGS:
        if FLAGS[name].value is not None:
            hparams[name] = FLAGS[name].value
    if FLAGS.do_eval or FLAGS.eval_all_checkpoints or FLAGS.eval_checkpoint:
        hparams.update(do_train=False, do_eval=True)
    return PretrainingConfig.from_preset(FLAGS.model_size, hparams)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs ``run_pretraining.py`` with ``argv`` (default ``sys.argv``); returns the exit
    status (1 for a user error, 128 + signal after SIGTERM, 130 on Ctrl-C)."""
    cli.quiet_tensorflow_startup()  # the error types below import TensorFlow
    from electra_tf.checkpoints import CheckpointError
    from electra_tf.data.errors import PretrainingDataError
    from electra_tf.training.run_directory import RunDirectoryError
    from electra_tf.training.strategy import StrategyError
    return cli.run(define_flags, _main, argv, description=__doc__,
                   user_errors=(ConfigError, RunDirectoryError, PretrainingDataError,
                                StrategyError, CheckpointError))


console_main = cli.console(main)


def _main(FLAGS: flags.FlagValues, positional: Sequence[str]) -> int:
    """Runs training or evaluation from parsed flags; returns the exit status."""
    if positional:
        raise cli.UsageError(f"unexpected arguments: {' '.join(positional)}")
    cli.quiet_absl_logging()
    # Records named by flag are the user's own data: no quick-start preset, and a glob
    # that matches nothing is an error, never a cue to build the bundled corpus there.
    quickstart = FLAGS.data_dir is None and FLAGS.pretrain_tfrecords is None
    data_dir = FLAGS.data_dir or DEFAULT_DATA_DIR
    config = _config(FLAGS, quickstart)
    model_name = FLAGS.model_name or f"electra_{config.model_size}"
    records = FLAGS.pretrain_tfrecords or os.path.join(
        data_dir, "pretrain_tfrecords", "pretrain_data.tfrecord*")
    vocab = FLAGS.vocab_file
    if vocab is None and os.path.exists(os.path.join(data_dir, "vocab.txt")):
        vocab = os.path.join(data_dir, "vocab.txt")
    from electra_tf.training import pretrain
    from electra_tf.training.runtime import runtime_options
    options = pretrain.RunOptions(
        model_dir=FLAGS.model_dir or os.path.join(data_dir, "models", model_name),
        pretrain_tfrecords=records, vocab_file=vocab, **runtime_options(FLAGS),
        seed=FLAGS.seed, deterministic=FLAGS.deterministic,
        log_every_steps=FLAGS.log_every_steps, init_checkpoint=FLAGS.init_checkpoint)
    if quickstart:
        print(f"quick start: no --data_dir, so training in ./{data_dir} with "
              f"configs/quickstart.json ({config.num_train_steps} steps, batch "
              f"{config.train_batch_size}); pass --data_dir for the paper's settings.",
              file=sys.stderr)
        _build_quickstart_data(records, config, vocab)
    if config.do_eval:
        results = pretrain.evaluate(config, options, checkpoint=FLAGS.eval_checkpoint,
                                    all_checkpoints=FLAGS.eval_all_checkpoints)
        if FLAGS.eval_all_checkpoints:
            print(f"learning curve of {len(results['checkpoints'])} checkpoint(s) in "
                  f"{os.path.join(options.model_dir, 'results', 'learning_curve.json')}")
        else:
            print("\n".join(f"{k} = {v:.6g}" for k, v in sorted(results.items())))
        return 0
    try:
        pretrain.train(config, options)
    except pretrain.Terminated as e:  # SIGTERM: a checkpoint was saved
        return 128 + e.signum  # the usual status of a process ended by a signal
    return 0


def _build_quickstart_data(records: str, config: PretrainingConfig, vocab) -> None:
    from electra_tf.data import pretraining_data
    from electra_tf.training.input_pipeline import match_files
    if match_files(records):
        return
    output_dir = os.path.dirname(records)
    print(f"building TFRecords from the bundled corpus into {output_dir}", file=sys.stderr)
    stats = pretraining_data.build_embedded_dataset(output_dir, config.max_seq_length, vocab)
    for line in pretraining_data.format_summary(stats, output_dir):
        print(line, file=sys.stderr)
