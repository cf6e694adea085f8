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
"""

import os
import sys

from absl import app, flags, logging

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from electra_tf.training import pretraining_cli as cli  # noqa: E402

FLAGS = flags.FLAGS
cli.define_flags()
flags.adopt_module_key_flags(cli)


def main(argv):
    if len(argv) > 1:
        sys.exit(f"error: unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)  # our own progress lines say what happens
    sys.exit(cli.main(FLAGS))


if __name__ == "__main__":
    app.run(main)
