"""Pre-trains ELECTRA (or Electric, or a plain masked LM) under tf.distribute.

    python run_pretraining.py --model_size=small        # quick start in ./data
    python run_pretraining.py --help                    # every flag, with examples

The command line lives in electra_tf/run_pretraining.py (also installed as
``electra-pretrain``).
"""

import sys

from electra_tf import run_pretraining

if __name__ == "__main__":
    sys.exit(run_pretraining.main(sys.argv))
