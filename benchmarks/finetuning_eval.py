"""Fine-tunes a checkpoint on the tasks available in ../shared/data and prints a results table.

    python benchmarks/finetuning_eval.py --init_checkpoint=data/models/electra_small/discriminator
    python benchmarks/finetuning_eval.py --random_init            # the floor
    python benchmarks/finetuning_eval.py --tasks=cola,wnli --max_train_examples=320 ...  # smoke

Tasks: cola, sst, mrpc, wnli (GLUE TSVs), chunk (CoNLL-2000; its test file stands in for
dev), squadv1 (the SQuAD 1.1 dev set split by article, 80% train / 20% eval: a QA smoke
run, not a SQuAD score). Training sets can be cut to --max_train_examples for CPUs.
Reports the dev metric(s), train examples/s and wall time per task.
"""

import argparse
import json
import os
import random
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
GLUE_DIRS = {"cola": "CoLA", "sst": "SST-2", "mrpc": "MRPC", "wnli": "WNLI"}
ALL_TASKS = ["cola", "sst", "mrpc", "wnli", "chunk", "squadv1"]


def write_head(src, dst, max_lines, header):
    """``dst``: the first ``max_lines`` rows of the TSV ``src`` (all for None), after its
    header line when ``header``; ``src`` and ``dst`` may be the same file."""
    with open(src, encoding="utf-8") as f:
        lines = f.read().splitlines(keepends=True)
    keep = lines[: (max_lines + (1 if header else 0)) if max_lines else None]
    with open(dst, "w", encoding="utf-8") as f:
        f.writelines(keep)


def prepare_data(root, tasks, max_train, seed):
    """Builds <root>/finetuning_data/<task>/ from ../shared/data (train sets cut to max_train)."""
    for task in tasks:
        out = os.path.join(root, "finetuning_data", task)
        os.makedirs(out, exist_ok=True)
        if task in GLUE_DIRS:
            header = task != "cola"
            src = os.path.join(SHARED, "glue", GLUE_DIRS[task])
            write_head(os.path.join(src, "train.tsv"), os.path.join(out, "train.tsv"),
                        max_train, header)
            write_head(os.path.join(src, "dev.tsv"), os.path.join(out, "dev.tsv"), None, header)
        elif task == "chunk":
            src = os.path.join(SHARED, "chunk", "conll2000")
            with open(os.path.join(src, "train.txt"), encoding="utf-8") as f:
                sentences = f.read().split("\n\n")
            if max_train:
                sentences = sentences[:max_train]
            with open(os.path.join(out, "train.txt"), "w", encoding="utf-8") as f:
                f.write("\n\n".join(s for s in sentences if s.strip()) + "\n\n")
            with open(os.path.join(src, "test.txt"), encoding="utf-8") as f:
                text = f.read()
            with open(os.path.join(out, "dev.txt"), "w", encoding="utf-8") as f:
                f.write(text if text.endswith("\n\n") else text + "\n")
        elif task == "squadv1":
            with open(os.path.join(SHARED, "squad", "dev-v1.1.json"), encoding="utf-8") as f:
                data = json.load(f)
            articles = list(data["data"])
            random.Random(seed).shuffle(articles)
            cut = int(0.8 * len(articles))
            train, dev = articles[:cut], articles[cut:]
            if max_train:  # cut by questions, whole paragraphs
                kept, count = [], 0
                for article in train:
                    if count >= max_train:
                        break
                    kept.append(article)
                    count += sum(len(p["qas"]) for p in article["paragraphs"])
                train = kept
            for name, part in (("train", train), ("dev", dev)):
                with open(os.path.join(out, f"{name}.json"), "w", encoding="utf-8") as f:
                    json.dump({"version": data.get("version", "1.1"), "data": part}, f)
        else:
            raise SystemExit(f"unknown task {task!r}; choose from {', '.join(ALL_TASKS)}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--init_checkpoint", default=None, help="TF1-name checkpoint to fine-tune")
    ap.add_argument("--random_init", action="store_true", help="no checkpoint (the floor)")
    ap.add_argument("--model_size", default="small")
    ap.add_argument("--tasks", default=",".join(ALL_TASKS))
    ap.add_argument("--max_train_examples", type=int, default=2000,
                    help="cut each training set (0 = all; full sets take hours on a CPU)")
    ap.add_argument("--hparams", default=None, help="FinetuningConfig hparams (JSON)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default="", help="append the results as a JSON line")
    args = ap.parse_args(argv)
    if not args.random_init and not args.init_checkpoint:
        ap.error("pass --init_checkpoint=<dir> or --random_init")

    from electra_tf.config import FinetuningConfig, parse_hparams
    from electra_tf.training.finetune import FinetuneOptions, run_finetuning

    tasks = args.tasks.split(",")
    work = tempfile.mkdtemp(prefix="electra-finetune-eval-")
    prepare_data(work, tasks, args.max_train_examples, args.seed)
    rows = []
    for task in tasks:
        config = FinetuningConfig.from_preset(args.model_size, [task],
                                              {"num_trials": 1, **parse_hparams(args.hparams)})
        options = FinetuneOptions(
            data_dir=work, model_dir=os.path.join(work, "models", task),
            results_dir=os.path.join(work, "results"),
            preprocessed_dir=os.path.join(work, "cache", task),
            init_checkpoint=None if args.random_init else args.init_checkpoint,
            seed=args.seed, quiet=True)
        started = time.time()
        results = run_finetuning(config, options)[0][task]
        wall = time.time() - started
        with open(os.path.join(work, "cache", task, f"{task}_train.metadata")) as f:
            n_train = json.load(f)["n_examples"]
        rows.append({"task": task, "results": results, "train_features": n_train,
                     "epochs": config.num_train_epochs, "wall_s": wall,
                     "examples_per_s": n_train * config.num_train_epochs / wall})
        print(f"{task:8s} {json.dumps({k: round(v, 2) for k, v in results.items()})} "
              f"| {rows[-1]['examples_per_s']:.1f} train examples/s, {wall:.0f} s", flush=True)
    print("\ncheckpoint:", "random init" if args.random_init else args.init_checkpoint)
    print(f"{'task':8s} {'metric':28s} {'examples/s':>10s} {'wall s':>7s}")
    for row in rows:
        main_metric = next(iter(row["results"].items()))
        print(f"{row['task']:8s} {main_metric[0] + ' ' + format(main_metric[1], '.2f'):28s} "
              f"{row['examples_per_s']:10.1f} {row['wall_s']:7.0f}")
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps({"checkpoint": args.init_checkpoint, "random_init": args.random_init,
                                "rows": rows}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
