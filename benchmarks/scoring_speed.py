"""Electric's one-pass sentence scores vs the masked-LM pseudo-log-likelihood (one pass per token).

Builds an ELECTRA-Small-shaped Electric model and a masked LM of the same encoder size
(random weights: speed does not depend on them), saves them as TF1 checkpoints, and scores
the same English sentences with ``electra_tf.scoring`` both ways. Reports the median of
``--repeats`` timed runs (after one warm-up) and the ratio MLM / Electric, measured in the
same process:

    python benchmarks/scoring_speed.py --num_sentences=64 --repeats=3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from electra_tf import loading, scoring  # noqa: E402
from electra_tf.formats import tf1
from electra_tf.config import PretrainingConfig  # noqa: E402
from electra_tf.networks.pretraining import build_pretraining_models  # noqa: E402
from electra_tf.tokenization import default_vocab_file  # noqa: E402


def corpus_sentences(n: int) -> list:
    """Sentences of the bundled Wikipedia excerpt (10-40 words each)."""
    import gzip
    from electra_tf.data.pretraining_data import default_corpus_files
    out = []
    for corpus_file in default_corpus_files():
        with gzip.open(corpus_file.path, "rt", encoding="utf-8") as f:
            for line in f:
                words = line.split()
                if 10 <= len(words) <= 40 and not line.startswith("<"):
                    out.append(line.strip())
                    if len(out) == n:
                        return out
    return out


def save(config: PretrainingConfig, directory: str) -> str:
    models = build_pretraining_models(config)
    tf1.save_original_checkpoint(os.path.join(directory, "model.ckpt-0"), *models.models)
    config.to_json(os.path.join(directory, "pretraining_config.json"))
    os.symlink(default_vocab_file(), os.path.join(directory, "vocab.txt"))
    return directory


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num_sentences", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch_size", type=int, default=32)
    ap.add_argument("--model_size", default="small")
    args = ap.parse_args(argv)
    texts = corpus_sentences(args.num_sentences)
    tmp = tempfile.mkdtemp(prefix="scoring_bench_")
    electric = save(PretrainingConfig.from_preset(args.model_size, {
        "electric_objective": True, "electra_objective": False}), os.path.join(tmp, "electric"))
    mlm = save(PretrainingConfig.from_preset(args.model_size, {"electra_objective": False}),
               os.path.join(tmp, "mlm"))
    tokens = 0
    times = {}
    for method, path in (("electric", electric), ("mlm", mlm)):
        model = loading.load_pretrained(path)
        runs = []
        for i in range(args.repeats + 1):  # run 0 traces the functions: not timed
            start = time.perf_counter()
            results = scoring.score_texts(model, texts, method=method,
                                          batch_size=args.batch_size)
            if i:
                runs.append(time.perf_counter() - start)
        tokens = sum(r.num_tokens for r in results)
        times[method] = statistics.median(runs)
        print(f"{method:8s} {times[method]:8.2f} s for {len(texts)} sentences "
              f"({tokens} word-pieces), median of {args.repeats}", flush=True)
    print(f"MLM pseudo-log-likelihood / Electric time: {times['mlm'] / times['electric']:.1f}x "
          f"({tokens / len(texts):.1f} word-pieces per sentence)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
