"""Fine-tunes a pre-trained ELECTRA discriminator on GLUE, QA or tagging tasks.

    python run_finetuning.py --data_dir=$DATA --task_names=mnli
    python run_finetuning.py --help                     # every flag, with examples

The command line lives in electra_tf/run_finetuning.py (also installed as
``electra-finetune``).
"""

import sys

from electra_tf import run_finetuning

if __name__ == "__main__":
    sys.exit(run_finetuning.main(sys.argv))
