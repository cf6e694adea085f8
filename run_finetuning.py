"""Fine-tunes a pre-trained ELECTRA discriminator on GLUE, QA or tagging tasks.

    python run_finetuning.py --data_dir=$DATA --model_name=electra_small --task_names=mnli
        Reads $DATA/finetuning_data/mnli/{train,dev_matched}.tsv, starts from
        $DATA/models/electra_small: a pre-training run directory (its newest complete
        ckpt-N, also while the run is still training), a Google release directory or a
        transformers directory; a directory holding only our discriminator/ export starts
        from that. Trains in .../finetuning_models/mnli_model_<trial>, writes
        .../results/mnli_results.{txt,json} (with the init checkpoint and its step).
        --init_checkpoint=none: no pre-trained weights (random initialisation, a baseline).

Hyperparameters: --hparams (JSON dict or .json path, keys of the original FinetuningConfig);
per-task and per-size defaults follow the original (configs/finetuning.json); --strategy,
--jit_compile and --mixed_precision as in run_pretraining.py.
"""

import os
import sys

from absl import app, flags, logging

from electra_tf.config import OPTIMIZERS

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", "data", "Holds finetuning_data/<task>/ and models/<model_name>.")
flags.DEFINE_string("model_name", None, "Pre-trained model under <data_dir>/models/; default "
                    "electra_<model_size>.")
flags.DEFINE_string("model_size", "small", "small, base or large (must match the checkpoint).")
flags.DEFINE_list("task_names", None, "Comma-separated tasks, e.g. mnli or cola,sst.")
flags.DEFINE_string("init_checkpoint", None, "Checkpoint to start from: anything "
                    "electra_tf.loading.read_weights reads (a pre-training run directory or its "
                    "ckpt-N, a TF1 checkpoint such as <run>/discriminator, a transformers "
                    "directory); default <data_dir>/models/<model_name>. 'none': no pre-trained "
                    "weights, random initialisation (a no-pre-training baseline).")
flags.DEFINE_string("hparams", None, "JSON dict or path to a .json file of hparams.")
flags.DEFINE_integer("num_trials", None, "Number of train+eval runs (results per trial).")
flags.DEFINE_boolean("do_train", None, "Train (default true).")
flags.DEFINE_boolean("do_eval", None, "Evaluate on dev after training (default true).")
flags.DEFINE_boolean("write_test_outputs", None, "Write GLUE leaderboard TSVs / SQuAD 2.0 test "
                     "predictions under <model>/results/test_predictions/.")
flags.DEFINE_enum("optimizer", None, list(OPTIMIZERS), "adamw: the original AdamWeightDecay "
                  "(default); lamb: LAMB, for large batches.")
flags.DEFINE_integer("gradient_accumulation_steps", None, "Sum k micro-batches of "
                     "train_batch_size / k examples into one update.")
flags.DEFINE_integer("seed", 0, "Seed of head initialisation, shuffling and dropout.")
flags.DEFINE_enum("strategy", "default", ["default", "one_device", "mirrored", "multi_worker",
                                          "tpu"], "As in run_pretraining.py.")
flags.DEFINE_string("tpu", None, "TPU name or address for --strategy=tpu.")
flags.DEFINE_boolean("jit_compile", None, "XLA; default on with one GPU or a TPU, off on CPUs.")
flags.DEFINE_enum("mixed_precision", None, ["bfloat16", "float16"], "Mixed precision.")
flags.DEFINE_enum("data_source", "tsv", ["tsv", "tfds"], "GLUE from the TSV files of "
                  "finetuning_data/<task>/ or from tensorflow-datasets' glue/* (downloads).")
flags.DEFINE_string("tfds_data_dir", None, "tensorflow-datasets data dir for --data_source=tfds.")


def default_init_checkpoint(pretrained: str) -> str:
    """The model directory itself when it holds weights (a run's newest complete ckpt-N, a
    release checkpoint, a transformers directory), else its discriminator/ export."""
    from electra_tf import checkpoints, loading
    export = os.path.join(pretrained, "discriminator")
    if not os.path.isdir(export):
        return pretrained
    try:
        if loading.detect_format(pretrained) != "tf1":
            return pretrained
        checkpoints.resolve_checkpoint(pretrained)
        return pretrained
    except checkpoints.CheckpointError:
        return export


def main(argv):
    if len(argv) > 1:
        sys.exit(f"error: unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)
    from electra_tf.checkpoints import CheckpointError
    from electra_tf.config import ConfigError, FinetuningConfig
    from electra_tf.finetuning.task import TaskDataError
    from electra_tf.training import finetune
    from electra_tf.training.strategy import StrategyError
    try:
        overrides = {name: FLAGS[name].value
                     for name in ("num_trials", "do_train", "do_eval", "write_test_outputs",
                                  "optimizer", "gradient_accumulation_steps")
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
            preprocessed_dir=os.path.join(pretrained, "finetuning_tfrecords",
                                          f"{tasks}_tfrecords"),
            init_checkpoint=init, vocab_file=vocab if os.path.exists(vocab) else None,
            seed=FLAGS.seed, strategy=FLAGS.strategy, tpu=FLAGS.tpu,
            jit_compile=FLAGS.jit_compile, mixed_precision=FLAGS.mixed_precision,
            data_source=FLAGS.data_source, tfds_data_dir=FLAGS.tfds_data_dir)
        finetune.run_finetuning(config, options)
    except (ConfigError, CheckpointError, TaskDataError, StrategyError, NotImplementedError,
            ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)
