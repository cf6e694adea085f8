"""Why a pre-trained arm of the quality study fine-tunes worse than random initialisation.

Reads the arms of a finished ``quality_study.py`` work directory and measures, on SST-2
dev sentences:

1. **Representations** of each arm's encoder (ELECTRA discriminator, masked LM, random
   init, and any ``--checkpoints`` given): the spread of the final hidden states over
   positions and of the [CLS] vector over sentences, the effective rank of the [CLS]
   vectors (participation ratio of their singular values), and the mean cosine similarity
   of two sentences' [CLS] vectors. A discriminator that says "original" everywhere with
   one confident output has little to offer a sentence head: its [CLS] vectors are all
   alike (cosine near 1, effective rank near 1), which fine-tuning must undo.
2. **Fine-tuning variants** on SST-2 with the study's settings and seeds, changing one
   thing at a time (``--variants``): layer-wise learning-rate decay off, a larger learning
   rate, an earlier checkpoint. Each prints the dev accuracy of every seed.

    python benchmarks/quality_diagnostics.py --work_dir=data/quality_study \\
        --json=benchmarks/results/quality_diagnostics.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# name -> (arm whose pre-training run initialises it or None, hparam changes, checkpoint)
VARIANTS = {
    "electra": ("electra", {}, None),
    "electra_no_layerwise_decay": ("electra", {"layerwise_lr_decay": 1.0}, None),
    "electra_lr_1e-3": ("electra", {"learning_rate": 1e-3}, None),
    "electra_ckpt_500": ("electra", {}, "ckpt-500"),
    "random_no_layerwise_decay": (None, {"layerwise_lr_decay": 1.0}, None),
    "mlm_no_layerwise_decay": ("mlm", {"layerwise_lr_decay": 1.0}, None),
}


def representation_stats(backbone, features) -> dict:
    """Statistics of the final hidden states of ``backbone`` on ``features`` ([B, L])."""
    import numpy as np
    out = backbone(features, training=False)
    hidden = out["sequence_output"].numpy().astype(np.float64)     # [B, L, H]
    mask = features["input_mask"].numpy().astype(bool)             # [B, L]
    cls = hidden[:, 0, :]                                          # [B, H]
    per_position_std = [hidden[b][mask[b]].std(axis=0).mean() for b in range(len(hidden))]
    centered = cls - cls.mean(axis=0)
    singular = np.linalg.svd(centered, compute_uv=False)
    spread = (singular ** 2).sum()
    # Identical vectors leave only rounding noise after centring: no direction at all.
    participation = (float(singular.sum() ** 2 / spread)
                     if spread > 1e-18 * max(1.0, float((cls ** 2).sum())) else 0.0)
    unit = cls / np.linalg.norm(cls, axis=1, keepdims=True)
    cosine = unit @ unit.T
    off_diagonal = cosine[~np.eye(len(cls), dtype=bool)]
    return {"std_over_positions": float(np.mean(per_position_std)),
            "cls_std_over_sentences": float(cls.std(axis=0).mean()),
            "cls_effective_rank": participation,
            "cls_mean_cosine": float(off_diagonal.mean()),
            "cls_norm": float(np.linalg.norm(cls, axis=1).mean())}


def sst_features(glue_dir: str, vocab_file: str, max_seq_length: int, count: int):
    import tensorflow as tf
    from electra_tf import detection
    from electra_tf.tokenization import FullTokenizer
    path = os.path.join(glue_dir, "finetuning_data", "sst", "dev.tsv")
    with open(path, encoding="utf-8") as f:
        sentences = [line.split("\t")[0] for line in f.read().splitlines()[1:count + 1]]
    tokenizer = FullTokenizer(vocab_file, do_lower_case=True)
    encoded = [detection.encode(tokenizer, s, max_seq_length) for s in sentences]
    ids, mask, segments = detection.pad_batch(encoded)
    return {"input_ids": tf.constant(ids), "input_mask": tf.constant(mask),
            "segment_ids": tf.constant(segments)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work_dir", default="data/quality_study")
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help=f"comma-separated, of {', '.join(VARIANTS)}; '' for none")
    ap.add_argument("--num_sentences", type=int, default=256)
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)

    import keras
    from electra_tf.config import FinetuningConfig
    from electra_tf.models import ElectraBackbone
    from electra_tf.training.finetune import FinetuneOptions, run_finetuning
    from quality_study import finetuning_hparams

    with open(os.path.join(args.work_dir, "study_state.json"), encoding="utf-8") as f:
        state = json.load(f)
    settings = state["settings"]
    models = os.path.join(args.work_dir, "models")
    glue_dir = os.path.join(args.work_dir, "glue")
    vocab = os.path.join(models, "electra", "vocab.txt")
    report = {"work_dir": args.work_dir, "representations": {}, "variants": {}}

    features = sst_features(glue_dir, vocab, settings["finetune"]["max_seq_length"],
                            args.num_sentences)
    sources = {"electra": os.path.join(models, "electra"),
               "electra ckpt-500": os.path.join(models, "electra", "ckpt-500"),
               "mlm": os.path.join(models, "mlm"), "random": None}
    for name, path in sources.items():
        keras.utils.set_random_seed(1)
        if path is None:
            # Loading first keeps the random draws of the committed results: the fresh
            # backbone is initialised after the loaded one consumed its share.
            electra = ElectraBackbone.from_pretrained(sources["electra"])
            backbone = ElectraBackbone(electra.config)  # same shape, fresh initialisation
            backbone(features)
        else:
            backbone = ElectraBackbone.from_pretrained(path)
        stats = representation_stats(backbone, features)
        report["representations"][name] = stats
        print(f"{name:<18} " + "  ".join(f"{k} {v:.4g}" for k, v in stats.items()), flush=True)
        keras.backend.clear_session()

    base_hparams = finetuning_hparams(settings)
    for variant in [v for v in args.variants.split(",") if v]:
        arm, changes, checkpoint = VARIANTS[variant]
        config = FinetuningConfig.from_preset("small", ["sst"], {**base_hparams, **changes})
        init = None
        if arm is not None:
            init = os.path.join(models, arm, *([checkpoint] if checkpoint else []))
        base = os.path.join(args.work_dir, "diagnostics", variant)
        options = FinetuneOptions(
            data_dir=glue_dir, model_dir=os.path.join(base, "model"), results_dir=base,
            preprocessed_dir=os.path.join(args.work_dir, "finetune", "cache", "sst"),
            init_checkpoint=init, seed=0, quiet=True)
        started = time.time()
        trials = run_finetuning(config, options)
        keras.backend.clear_session()
        accuracies = [trial["sst"]["accuracy"] for trial in trials]
        report["variants"][variant] = {
            "init": init, "changes": changes, "accuracies": accuracies,
            "median": statistics.median(accuracies), "wall_s": time.time() - started}
        print(f"{variant:<28} SST-2 accuracy {', '.join(f'{a:.1f}' for a in accuracies)} "
              f"(median {statistics.median(accuracies):.1f})", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
