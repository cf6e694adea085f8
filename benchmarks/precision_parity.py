"""Does mixed-precision pre-training learn like float32? Loss curves side by side.

    python benchmarks/precision_parity.py                   # bfloat16 vs float32, 300 steps
    python benchmarks/precision_parity.py --precisions=bfloat16,float16 --steps=600

Runs ``run_pretraining.py`` on the corpus bundled in the package (the quick start's data)
with a small model: float32 under two seeds (seed 0 and 1) gives the run-to-run spread,
then each mixed precision under seed 0. The curves are the logged total, generator (MLM)
and discriminator losses of each run's training log (train_log.jsonl) every --log_every
steps, smoothed over --window logged points.
A precision "learns like float32" when its mean absolute distance to the float32 seed-0
curve is no larger than --tolerance x the distance between the two float32 seeds, for each
loss, over the second half of the run (the first half is dominated by warm-up transients).

Writes <results_dir>/precision_parity.{json,md}. Every run keeps its directory under
--work_dir, so re-running reuses finished runs.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from electra_tf.training.train_log import read_train_log, training_curve  # noqa: E402

HPARAMS = {"model_hparam_overrides": {"num_hidden_layers": 4, "hidden_size": 128,
                                      "intermediate_size": 512, "num_attention_heads": 2},
           "max_seq_length": 128, "train_batch_size": 16, "learning_rate": 1e-3,
           "num_warmup_steps": 30, "save_checkpoints_steps": 100000,
           "keep_checkpoint_max": 1}
LOSSES = ("total", "mlm", "disc")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--precisions", default="bfloat16", help="mixed precisions to compare")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--log_every", type=int, default=10)
    ap.add_argument("--window", type=int, default=5, help="logged points per moving average")
    ap.add_argument("--tolerance", type=float, default=1.5)
    ap.add_argument("--jit_compile", action="store_true", help="XLA for every run")
    ap.add_argument("--work_dir", default=os.path.join(ROOT, "data", "precision_parity"))
    ap.add_argument("--results_dir", default=os.path.join(ROOT, "benchmarks", "results"))
    ap.add_argument("--hparams", default=None, help="JSON overrides of the small model")
    args = ap.parse_args(argv)
    args.precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    bad = [p for p in args.precisions if p not in ("bfloat16", "float16")]
    if bad:
        ap.error(f"--precisions: unknown {bad} (bfloat16, float16)")
    return args


def loss_curves(records: list) -> dict:
    """{loss name: [(step, value)]} from a run's training log (``train_log.jsonl``
    records, :mod:`electra_tf.training.train_log`)."""
    curve = {name: [] for name in LOSSES}
    for record in training_curve(records):
        for name in LOSSES:
            value = record["stats"].get(f"{name}_loss")
            if value is not None:
                curve[name].append((record["step"], float(value)))
    return curve


def smooth(values: list, window: int) -> list:
    """Trailing moving average (the first points average what there is)."""
    return [statistics.fmean(values[max(0, i - window + 1): i + 1]) for i in range(len(values))]


def distance(a: list, b: list, window: int) -> float:
    """Mean |a - b| of the smoothed curves over the second half of their common steps."""
    steps = sorted(set(s for s, _ in a) & set(s for s, _ in b))
    va, vb = dict(a), dict(b)
    sa, sb = smooth([va[s] for s in steps], window), smooth([vb[s] for s in steps], window)
    half = len(steps) // 2
    return statistics.fmean(abs(x - y) for x, y in zip(sa[half:], sb[half:]))


def run(name: str, seed: int, precision: str, args, hparams: dict) -> dict:
    model_dir = os.path.join(args.work_dir, "models", name)
    log_path = model_dir + ".log"
    done = os.path.join(model_dir, "tf1", f"model.ckpt-{args.steps}.index")
    if os.path.exists(done):
        print(f"[{name}] done before: reusing its training log", flush=True)
        return {"name": name, "curve": loss_curves(read_train_log(model_dir)), "wall_s": None}
    cmd = [sys.executable, os.path.join(ROOT, "run_pretraining.py"),
           f"--data_dir={args.work_dir}", f"--model_dir={model_dir}", f"--seed={seed}",
           f"--num_train_steps={args.steps}", f"--log_every_steps={args.log_every}",
           "--hparams=" + json.dumps(hparams),
           "--jit_compile" if args.jit_compile else "--nojit_compile"]
    if precision != "float32":
        cmd.append(f"--mixed_precision={precision}")
    print(f"[{name}] {' '.join(cmd[1:])}", flush=True)
    started = time.time()
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "w") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if proc.returncode != 0:
        sys.exit(f"error: {name} failed (exit {proc.returncode}); see {log_path}")
    return {"name": name, "curve": loss_curves(read_train_log(model_dir)),
            "wall_s": time.time() - started}


def ensure_data(args, max_seq_length: int) -> None:
    """The bundled corpus as TFRecords in <work_dir>/pretrain_tfrecords (built once)."""
    out = os.path.join(args.work_dir, "pretrain_tfrecords")
    if os.path.isdir(out) and any(n.startswith("pretrain_data.tfrecord") for n in os.listdir(out)):
        return
    subprocess.run([sys.executable, os.path.join(ROOT, "build_pretraining_dataset.py"),
                    f"--output_dir={out}", f"--max_seq_length={max_seq_length}",
                    "--num_out_files=4", "--noprogress"], check=True, cwd=ROOT)


def main(argv=None):
    args = parse_args(argv)
    hparams = {**HPARAMS, **(json.loads(args.hparams) if args.hparams else {})}
    os.makedirs(args.work_dir, exist_ok=True)
    ensure_data(args, hparams["max_seq_length"])
    runs = {"float32_seed0": run("float32_seed0", 0, "float32", args, hparams),
            "float32_seed1": run("float32_seed1", 1, "float32", args, hparams)}
    for precision in args.precisions:
        runs[f"{precision}_seed0"] = run(f"{precision}_seed0", 0, precision, args, hparams)
    reference = runs["float32_seed0"]["curve"]
    spread = {k: distance(reference[k], runs["float32_seed1"]["curve"][k], args.window)
              for k in LOSSES}
    verdicts = {}
    for precision in args.precisions:
        curve = runs[f"{precision}_seed0"]["curve"]
        dist = {k: distance(reference[k], curve[k], args.window) for k in LOSSES}
        verdicts[precision] = {
            "distance": dist,
            "ratio_to_seed_spread": {k: dist[k] / spread[k] if spread[k] else float("inf")
                                     for k in LOSSES},
            "learns_like_float32": all(dist[k] <= args.tolerance * spread[k] for k in LOSSES)}
    final = {name: {k: r["curve"][k][-1][1] for k in LOSSES} for name, r in runs.items()}
    report = {"benchmark": "precision_parity", "steps": args.steps, "hparams": hparams,
              "jit_compile": args.jit_compile, "window": args.window,
              "tolerance": args.tolerance, "seed_spread": spread, "verdicts": verdicts,
              "final_losses": final,
              "wall_s": {name: r["wall_s"] for name, r in runs.items()},
              "curves": {name: r["curve"] for name, r in runs.items()}}
    os.makedirs(args.results_dir, exist_ok=True)
    with open(os.path.join(args.results_dir, "precision_parity.json"), "w") as f:
        json.dump(report, f, indent=1)
    lines = [f"# Mixed precision vs float32: {args.steps} pre-training steps",
             "",
             f"Model: {json.dumps(hparams['model_hparam_overrides'])}, batch "
             f"{hparams['train_batch_size']}, L={hparams['max_seq_length']}, lr "
             f"{hparams['learning_rate']}; XLA {'on' if args.jit_compile else 'off'}. Distance: "
             f"mean |difference| of the losses (moving average of {args.window} logged points) "
             "over the second half of the run.",
             "",
             "| run | " + " | ".join(f"final {k}" for k in LOSSES) + " | "
             + " | ".join(f"distance {k} (x seed spread)" for k in LOSSES) + " |",
             "|---" * (1 + 2 * len(LOSSES)) + "|"]
    for name in runs:
        cells = [f"{final[name][k]:.4f}" for k in LOSSES]
        if name == "float32_seed0":
            cells += ["reference"] * len(LOSSES)
        elif name == "float32_seed1":
            cells += [f"{spread[k]:.4f} (1.00)" for k in LOSSES]
        else:
            v = verdicts[name.split("_seed")[0]]
            cells += [f"{v['distance'][k]:.4f} ({v['ratio_to_seed_spread'][k]:.2f})"
                      for k in LOSSES]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    for precision, v in verdicts.items():
        lines.append(f"- {precision}: {'learns like float32' if v['learns_like_float32'] else 'DIFFERS from float32'} "
                     f"(every distance within {args.tolerance} x the float32 seed spread: "
                     f"{v['learns_like_float32']})")
    with open(os.path.join(args.results_dir, "precision_parity.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
