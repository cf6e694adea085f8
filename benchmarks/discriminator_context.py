"""Does a pre-trained discriminator read context? The word-order test.

Each held-out paragraph is scored twice by the discriminator: as written, and with its
words shuffled (the same word-pieces, every word kept whole, the order destroyed). A
discriminator that reads context finds shuffled text full of misplaced tokens; one that
answers by a token's identity alone gives both versions the same probabilities.

    python benchmarks/discriminator_context.py --work_dir=$HOME/electra_study \\
        --checkpoints=250,2500,12000 [--texts=200]

Prints, per checkpoint, the mean "replaced" probability of the original and the shuffled
text, and the AUC of telling a shuffled text's word-pieces from the original's by that
probability (0.5: no use of word order); and, as the contrast, the generator's mean
masked-LM log-likelihood per word-piece of both versions. Results: benchmarks/results/discriminator_context.json.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from electra_tf.io_utils import write_text_atomic  # noqa: E402

PILOT = "L64_bert_gen0.5"
RESULTS = os.path.join(ROOT, "benchmarks", "results", "discriminator_context.json")


def rank_auc(negatives, positives) -> float:
    """P(a positive scores above a negative), ties counted half (Mann-Whitney U). Exact,
    unlike the pre-training metric's 200-threshold AUC, which would round the small
    differences this test looks for to a tie."""
    scores = np.concatenate([negatives, positives])
    _, group, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[group]  # 1-based, ties averaged
    n_pos, n_neg = len(positives), len(negatives)
    return float((ranks[n_neg:].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def heldout_paragraphs(corpus_dir: str, count: int, words: int) -> list:
    """The first ``count`` paragraphs of at least ``words`` words (markup lines skipped),
    each cut to ``words`` words so that it fits the pre-training length."""
    out = []
    for path in sorted(glob.glob(os.path.join(corpus_dir, "*"))):
        for line in open(path, encoding="utf-8"):
            split = line.split()
            if len(split) >= words and "<" not in line:
                out.append(" ".join(split[:words]))
                if len(out) == count:
                    return out
    raise SystemExit(f"error: {corpus_dir} has only {len(out)} paragraphs of {words}+ words")


def shuffled(text: str, rng: random.Random) -> str:
    words = text.split()
    rng.shuffle(words)
    return " ".join(words)


def measure(checkpoint: str, vocab_file: str, texts: list, generator_texts: int,
            seed: int = 0) -> dict:
    from electra_tf.detection import detect_replaced_tokens
    from electra_tf.loading import load_pretrained
    from electra_tf.scoring import mlm_pseudo_log_likelihood
    model = load_pretrained(checkpoint)  # once, for both networks and both versions
    rng = random.Random(seed)
    mixed = [shuffled(t, rng) for t in texts]
    # The generator, the same Transformer code trained as a masked LM, as the contrast:
    # its mean log-likelihood per word-piece, as written and shuffled (one pass per piece).
    generator = {}
    for name, batch in (("original", texts), ("shuffled", mixed)):
        scores = mlm_pseudo_log_likelihood(model, batch[:generator_texts],
                                           vocab_file=vocab_file, batch_size=64)
        generator[f"generator_log_p_{name}"] = round(float(np.mean(np.concatenate(
            [r.token_scores for r in scores]))), 4)
    original = detect_replaced_tokens(model, texts, vocab_file=vocab_file)
    scrambled = detect_replaced_tokens(model, mixed, vocab_file=vocab_file)
    p_orig = np.concatenate([d.probabilities for d in original])
    p_mixed = np.concatenate([d.probabilities for d in scrambled])
    return {"checkpoint": checkpoint, "texts": len(texts), "word_pieces": int(len(p_orig)),
            "mean_p_original": round(float(p_orig.mean()), 4),
            "mean_p_shuffled": round(float(p_mixed.mean()), 4),
            "flagged_original": round(float((p_orig > 0.5).mean()), 4),
            "flagged_shuffled": round(float((p_mixed > 0.5).mean()), 4),
            "word_order_auc": round(rank_auc(p_orig, p_mixed), 4), **generator}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work_dir", required=True, help="the plateau study's directory")
    parser.add_argument("--pilot", default=PILOT)
    parser.add_argument("--checkpoints", required=True, help="comma-separated steps")
    parser.add_argument("--texts", type=int, default=200)
    parser.add_argument("--generator_texts", type=int, default=40,
                        help="texts the generator scores (one forward pass per word-piece)")
    parser.add_argument("--words", type=int, default=40,
                        help="words per paragraph (40 words fit 64 word-pieces mostly)")
    parser.add_argument("--vocab_file", default=os.path.join(
        os.path.dirname(ROOT), "shared", "data", "vocab", "bert_uncased_vocab.txt"))
    args = parser.parse_args(argv)
    texts = heldout_paragraphs(os.path.join(args.work_dir, "corpus_heldout"), args.texts,
                               args.words)
    results = []
    for step in args.checkpoints.split(","):
        prefix = os.path.join(args.work_dir, "pilots", args.pilot, f"ckpt-{step}")
        if not os.path.exists(prefix + ".index"):
            raise SystemExit(f"error: no checkpoint {prefix}")
        r = {"step": int(step), **measure(prefix, args.vocab_file, texts, args.generator_texts)}
        r["checkpoint"] = r["checkpoint"].replace(args.work_dir, "$STUDY")
        print(json.dumps(r), flush=True)
        results.append(r)
    write_text_atomic(RESULTS, json.dumps(
        {"command": "python benchmarks/discriminator_context.py " + " ".join(
            a.replace(args.work_dir, "$STUDY") for a in (argv or sys.argv[1:])),
         "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
