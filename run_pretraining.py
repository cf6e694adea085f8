"""Pre-trains ELECTRA (or Electric, or a plain masked LM) under tf.distribute.

    python run_pretraining.py --model_size=small        # quick start in ./data
    python run_pretraining.py --help                    # every flag, with examples

The command line lives in electra_tf/training/pretraining_cli.py (also installed as
``electra-pretrain``).
"""

import sys

from electra_tf.training import pretraining_cli

if __name__ == "__main__":
    sys.exit(pretraining_cli.main(sys.argv))
