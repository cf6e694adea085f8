"""Builds ELECTRA pre-training TFRecords from raw text.

    python build_pretraining_dataset.py                 # embedded demo corpus
    python build_pretraining_dataset.py --corpus_dir=wiki/ --output_dir=out --num_processes=2
    python build_pretraining_dataset.py --help          # every flag

The command line lives in electra_tf/build_pretraining_dataset.py (also installed as
``electra-build-data``).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from electra_tf import build_pretraining_dataset  # noqa: E402

if __name__ == "__main__":
    sys.exit(build_pretraining_dataset.main(sys.argv))
