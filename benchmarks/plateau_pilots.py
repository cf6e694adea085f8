"""Pilots for issue 21: which faithful setting leaves the early plateau cheapest?

Each pilot is an ordinary ``run_pretraining.py`` run with settings a user would choose
(depth/width in the Small family, batch, peak learning rate and warm-up,
``max_seq_length``, generator size, vocabulary), trained for a bounded wall time, its
checkpoints then evaluated on held-out Wikipedia text that no pilot trains on
(``run_pretraining.py --do_eval --eval_all_checkpoints --pretrain_tfrecords=<held-out>``).
Every pilot schedules its learning rate for the long run (``--num_train_steps`` is the
long run's horizon), so the chosen pilot *is* the start of the long run: resuming it
with a larger ``--cpu_minutes`` continues it, nothing is thrown away.

    python benchmarks/plateau_pilots.py --work_dir=$HOME/electra_study \\
        --pilots=L64_bert,L128_bert --cpus=0,1     # two at once, a core each
    python benchmarks/plateau_pilots.py --work_dir=$HOME/electra_study --stages=eval,report
    python benchmarks/plateau_pilots.py --work_dir=$HOME/electra_study \
        --stages=finetune,report --finetune_pilot=L64_bert --finetune_steps=1000,2000

Stages (``--stages``, default ``data,train,eval,report``):

  data    held-out split of the corpus (the last ``--heldout_files`` files), a WordPiece
          vocab learned from the training files (``electra_tf.build_vocab``) where a
          pilot asks for one, and the TFRecords of every (vocab, L) the pilots use.
  train   each pilot until its cumulative training CPU time reaches ``--cpu_minutes``
          core-minutes (SIGTERM then: the run saves a checkpoint and exits; a re-run
          resumes). CPU time, not wall time, so other work on the machine does not
          shrink a pilot's compute.
          With ``--cpus=0,1`` pilots run side by side, each pinned to one core.
  eval    every checkpoint not yet evaluated, on ``--eval_batches`` held-out batches.
  finetune (not in the default) the discriminator of ``--finetune_pilot`` at each of
          ``--finetune_steps`` and random initialisation, identical settings
          (``FINETUNE_HPARAMS``), ``FINETUNE_SEEDS`` seeds, on SST-2, MRPC, CoLA and a QNLI
          split; every finished arm x task is kept in the state file and not re-run.
  preset  (not in the default) the checkpoint ``--preset_step`` of ``--finetune_pilot``
          packed as electra_tf's packaged preset ``PRESET_NAME`` (float16,
          ``electra_tf.convert.pack``), its manifest recording the training command,
          FLOPs, core-minutes, held-out figures and fine-tuning averages.
  report  ``<results_dir>/plateau_pilots.{json,md}``: per pilot its command, FLOPs per
          step (``electra_tf.flops``, the paper's convention), the held-out curve and the
          FLOPs at which it left the plateau (masked-LM accuracy of the generator above
          ``EXIT_MLM_ACC`` and replaced-token AUC above ``EXIT_AUC``), or "not within
          the pilot"; and the fine-tuning table when stage finetune has results.
  markdown (alone) ``<results_dir>/plateau_pilots.md`` again from the committed
          ``plateau_pilots.json``: every table, without the study's work directory.

The plateau this looks past is the one of ``benchmarks/results/quality_study.md``:
generator masked-LM accuracy 0.18-0.19 and AUC 0.57-0.60 from step 2000 to 4000 of a
4-layer H256 model at batch 32, L=128, lr 5e-4 (8.1e14 FLOPs).
"""

from __future__ import annotations

import argparse
import fcntl
import glob
import json
import os
import shlex
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from electra_tf.io_utils import write_text_atomic  # noqa: E402

CORPUS = os.path.join(os.path.dirname(ROOT), "shared", "data", "corpus",
                      "enwiki-2015-wikiextractor", "AA")
BERT_VOCAB = os.path.join(os.path.dirname(ROOT), "shared", "data", "vocab",
                          "bert_uncased_vocab.txt")
EXIT_MLM_ACC = 0.25   # the plateau sits at 0.18-0.19
EXIT_AUC = 0.70       # the plateau sits at 0.57-0.60
CREDIT_EVERY_S = 60  # how often a running pilot's time is written to the state file
STATE_FILE = "pilots_state.json"

SMALL4 = {"num_hidden_layers": 4, "hidden_size": 256, "intermediate_size": 1024,
          "num_attention_heads": 4}
# name -> settings. vocab: "bert" (the BERT uncased vocab) or "wiki<k>k" (a WordPiece vocab
# of k*1024 learned from the training files). Everything not given is configs/small.json.
PILOTS = {
    # The previous study's setting (benchmarks/results/quality_study.md) with the long
    # run's horizon: its plateau came with a 4000-step linear decay.
    "L128_bert": {"model": SMALL4, "max_seq_length": 128, "vocab": "bert",
                  "train_batch_size": 32, "learning_rate": 5e-4, "num_warmup_steps": 1000},
    "L64_bert": {"model": SMALL4, "max_seq_length": 64, "vocab": "bert",
                 "train_batch_size": 32, "learning_rate": 5e-4, "num_warmup_steps": 1000},
    # Warm-up as L64_bert's, so that within a pilot's budget the peak rate is reached.
    "L64_bert_lr1e-3": {"model": SMALL4, "max_seq_length": 64, "vocab": "bert",
                        "train_batch_size": 32, "learning_rate": 1e-3,
                        "num_warmup_steps": 1000},
    "L64_bert_gen0.5": {"model": SMALL4, "max_seq_length": 64, "vocab": "bert",
                        "train_batch_size": 32, "learning_rate": 5e-4,
                        "num_warmup_steps": 1000, "generator_hidden_size": 0.5},
    "L64_wiki8k": {"model": SMALL4, "max_seq_length": 64, "vocab": "wiki8k",
                   "train_batch_size": 32, "learning_rate": 5e-4, "num_warmup_steps": 1000},
    # The paper's Small rate (5e-4 at batch 128) scaled linearly to batch 32 (sqrt: 2.5e-4).
    # At 5e-4 every pilot's AUC fell from 0.81 at step 250 to 0.57 as the warm-up reached
    # its peak, and stayed there; at 1e-3 it fell further: the discriminator, not the
    # generator, is what the rate holds back.
    "L64_bert_gen0.5_lr1.25e-4": {"model": SMALL4, "max_seq_length": 64, "vocab": "bert",
                                  "train_batch_size": 32, "learning_rate": 1.25e-4,
                                  "num_warmup_steps": 1000, "generator_hidden_size": 0.5},
    "L64_bert_gen0.5_lr2.5e-4": {"model": SMALL4, "max_seq_length": 64, "vocab": "bert",
                                 "train_batch_size": 32, "learning_rate": 2.5e-4,
                                 "num_warmup_steps": 1000, "generator_hidden_size": 0.5},
}
HORIZON_STEPS = 50_000  # the long run's decay horizon, shared by every pilot
# A corpus vocabulary is learned from the first lines of the training files (about a third
# of them): on all 331k lines build_vocab took over 30 minutes here, and word-piece counts
# settle long before that.
VOCAB_SAMPLE_LINES = 100_000

# Stage finetune: the discriminator at points of a pilot's curve, and random initialisation,
# with identical settings (quality_study.py's cpu scale: the paper's Small learning rate 3e-4,
# layer-wise decay 0.8, batch 32, 2 epochs; L=64 as the pilots pre-train) on the first
# FINETUNE_MAX_TRAIN examples; QNLI (only its dev set is in shared/data) is split in two.
FINETUNE_TASKS = ("sst", "mrpc", "cola", "qnli")
GLUE = os.path.join(os.path.dirname(ROOT), "shared", "data", "glue")
GLUE_DIRS = {"sst": "SST-2", "mrpc": "MRPC", "cola": "CoLA", "qnli": "QNLI"}
FINETUNE_MAX_TRAIN = 3000
FINETUNE_SEEDS = 3
FINETUNE_HPARAMS = {"max_seq_length": 64, "num_train_epochs": 2.0, "learning_rate": 3e-4,
                    "layerwise_lr_decay": 0.8, "train_batch_size": 32}


# Stage preset: the name the trained model ships under (electra_tf/assets/presets/<name>).
PRESET_NAME = "electra_small4_wiki"


def say(msg: str) -> None:
    print(f"[pilots {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def vocab_file(work_dir: str, vocab: str) -> str:
    return BERT_VOCAB if vocab == "bert" else os.path.join(work_dir, f"vocab_{vocab}.txt")


def vocab_size(work_dir: str, vocab: str) -> int:
    with open(vocab_file(work_dir, vocab), encoding="utf-8") as f:
        return sum(1 for line in f if line.strip())


def records_dir(work_dir: str, vocab: str, seq_len: int, split: str) -> str:
    return os.path.join(work_dir, f"{vocab}_L{seq_len}", split)


def corpus_split(work_dir: str, heldout_files: int) -> dict:
    """``corpus_train/`` and ``corpus_heldout/``: symlinks to the corpus files."""
    files = sorted(glob.glob(os.path.join(CORPUS, "wiki_*")))
    if len(files) <= heldout_files:
        raise SystemExit(f"error: {CORPUS} holds {len(files)} files; need more than "
                         f"--heldout_files={heldout_files}")
    split = {"train": files[:-heldout_files], "heldout": files[-heldout_files:]}
    for name, members in split.items():
        directory = os.path.join(work_dir, f"corpus_{name}")
        os.makedirs(directory, exist_ok=True)
        for path in members:
            link = os.path.join(directory, os.path.basename(path))
            if not os.path.lexists(link):
                os.symlink(path, link)
    return {name: os.path.join(work_dir, f"corpus_{name}") for name in split}


def run(cmd: list, log: str | None = None) -> int:
    say("$ " + shlex.join(cmd))
    if log is None:
        return subprocess.call(cmd, cwd=ROOT)
    with open(log, "a", encoding="utf-8") as out:
        return subprocess.call(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def stage_data(work_dir: str, pilots: list, heldout_files: int) -> None:
    corpora = corpus_split(work_dir, heldout_files)
    for vocab in sorted({PILOTS[p]["vocab"] for p in pilots} - {"bert"}):
        path = vocab_file(work_dir, vocab)
        if not os.path.exists(path):
            size = int(vocab[len("wiki"):-1]) * 1024
            if run([sys.executable, "-m", "electra_tf.build_vocab",
                    f"--corpus={corpora['train']}/*", f"--output={path}",
                    f"--vocab_size={size}", f"--max_lines={VOCAB_SAMPLE_LINES}"]) != 0:
                raise SystemExit(f"error: building {path} failed")
    for vocab, seq_len in sorted({(PILOTS[p]["vocab"], PILOTS[p]["max_seq_length"])
                                  for p in pilots}):
        for split, files in (("train", 16), ("heldout", 2)):
            out = records_dir(work_dir, vocab, seq_len, split)
            if os.path.exists(os.path.join(out, "pretrain_data.json")):
                continue
            if run([sys.executable, "build_pretraining_dataset.py",
                    f"--corpus_dir={corpora[split]}", f"--output_dir={out}",
                    f"--vocab_file={vocab_file(work_dir, vocab)}",
                    f"--max_seq_length={seq_len}", f"--num_out_files={files}",
                    "--num_processes=2", "--noprogress"]) != 0:
                raise SystemExit(f"error: building {out} failed")


def pilot_hparams(work_dir: str, name: str) -> dict:
    p = PILOTS[name]
    hparams = {"model_hparam_overrides": p["model"], "keep_checkpoint_max": 0,
               "vocab_size": vocab_size(work_dir, p["vocab"])}
    if "generator_hidden_size" in p:
        hparams["generator_hidden_size"] = p["generator_hidden_size"]
    return hparams


def pilot_args(work_dir: str, name: str) -> list:
    p = PILOTS[name]
    train = records_dir(work_dir, p["vocab"], p["max_seq_length"], "train")
    save = 250 if p["train_batch_size"] <= 32 else 100
    return [f"--model_dir={os.path.join(work_dir, 'pilots', name)}",
            f"--pretrain_tfrecords={train}/pretrain_data.tfrecord-*",
            f"--vocab_file={vocab_file(work_dir, p['vocab'])}",
            "--hparams=" + json.dumps(pilot_hparams(work_dir, name), sort_keys=True),
            f"--max_seq_length={p['max_seq_length']}",
            f"--num_train_steps={HORIZON_STEPS}",
            f"--num_warmup_steps={p['num_warmup_steps']}",
            f"--learning_rate={p['learning_rate']}",
            f"--train_batch_size={p['train_batch_size']}",
            f"--save_checkpoints_steps={save}", "--log_every_steps=50",
            # Fixed, so that every pilot's CPU time buys the same kind of step.
            "--mixed_precision=float32", "--nojit_compile"]


def flops_per_step(work_dir: str, name: str) -> float:
    from electra_tf.config import PretrainingConfig
    from electra_tf.flops import flops_for_config
    p = PILOTS[name]
    config = PretrainingConfig.from_preset("small", {
        **pilot_hparams(work_dir, name), "max_seq_length": p["max_seq_length"],
        "train_batch_size": p["train_batch_size"], "num_train_steps": 1,
        **({"generator_hidden_size": p["generator_hidden_size"]}
           if "generator_hidden_size" in p else {})})
    return flops_for_config(config).train_flops


class State:
    """Cumulative training CPU and wall time per pilot, kept across sittings, and the
    fine-tuning results. Several processes share the file (the long run, a fine-tuning
    stage, a pilot beside them), so every write re-reads it under a lock and changes only
    its own entry: a process never writes back another's entries as it read them."""

    def __init__(self, work_dir: str):
        self.path = os.path.join(work_dir, STATE_FILE)
        self.data = self._read()

    def _read(self) -> dict:
        return json.load(open(self.path)) if os.path.exists(self.path) else {}

    def update(self, change) -> None:
        """Applies ``change(data)`` to the file's current contents, under an exclusive lock."""
        with open(self.path + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.data = self._read()
            change(self.data)
            write_text_atomic(self.path, json.dumps(self.data, indent=2, sort_keys=True) + "\n")

    def cpu(self, name: str) -> float:
        return self.data.get(name, {}).get("train_cpu_s", 0.0)

    def wall(self, name: str) -> float:
        return self.data.get(name, {}).get("train_wall_s", 0.0)

    def add(self, name: str, wall: float, cpu: float, cpus: str | None,
            sitting: str | None = None) -> None:
        """Credits ``wall`` and ``cpu`` seconds to ``name``; with ``sitting`` (its start
        time), to that sitting's record, so a sitting can be credited as it goes."""
        def change(data):
            entry = data.setdefault(name, {"train_wall_s": 0.0, "train_cpu_s": 0.0,
                                           "sittings": []})
            entry["train_wall_s"] += wall
            entry["train_cpu_s"] += cpu
            record = next((s for s in entry["sittings"]
                           if sitting is not None and s.get("started") == sitting), None)
            if record is None:
                record = {"wall_s": 0.0, "cpu_s": 0.0, "cpus": cpus}
                if sitting is not None:
                    record["started"] = sitting
                entry["sittings"].append(record)
            record["wall_s"] = round(record["wall_s"] + wall, 1)
            record["cpu_s"] = round(record["cpu_s"] + cpu, 1)
            record["ended"] = time.strftime("%Y-%m-%d %H:%M:%S")
        self.update(change)

    def add_finetune(self, key: str, result: dict) -> None:
        def change(data):
            data.setdefault("finetune", {})[key] = result
        self.update(change)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process, all its threads (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def stage_train(work_dir: str, pilots: list, cpu_minutes: float, cpus: list) -> None:
    """Trains pilots, ``len(cpus)`` at a time, each pinned to its core(s).

    The budget is CPU time (core-minutes), not wall time, so pilots that share the
    machine with other work get the same compute as pilots on an idle one.
    """
    state = State(work_dir)
    budget_s = cpu_minutes * 60
    todo = [p for p in pilots if state.cpu(p) < budget_s - 30]
    slots = cpus or [None]
    running = {}  # slot -> (name, proc, sitting)
    os.makedirs(os.path.join(work_dir, "pilots"), exist_ok=True)

    class Sitting:
        """One training process's time, credited to the state file every
        ``CREDIT_EVERY_S`` as it goes: a sitting killed outright (the machine's session
        ends) keeps all but its last minute on the books."""

        def __init__(self, name, slot):
            self.name, self.slot = name, slot
            self.started = time.time()
            self.label = time.strftime("%Y-%m-%d %H:%M:%S")
            self.cpu_before = state.cpu(name)
            self.cpu = self.credited_cpu = self.credited_wall = 0.0

        def credit(self):
            wall = time.time() - self.started
            state.add(self.name, wall - self.credited_wall, self.cpu - self.credited_cpu,
                      self.slot, sitting=self.label)
            self.credited_wall, self.credited_cpu = wall, self.cpu

    def finish(slot):
        name, proc, sitting = running.pop(slot)
        sitting.credit()
        say(f"{name}: stopped (exit {proc.returncode}) after {state.cpu(name) / 60:.1f} "
            f"core-minutes, {state.wall(name) / 60:.1f} wall minutes in all")

    try:
        while todo or running:
            for slot in slots:
                if slot in running or not todo:
                    continue
                name = todo.pop(0)
                cmd = [sys.executable, "run_pretraining.py", *pilot_args(work_dir, name)]
                if slot is not None:
                    cmd = ["taskset", "-c", slot, *cmd]
                say(f"{name}: training {(budget_s - state.cpu(name)) / 60:.1f} more "
                    "core-minutes" + (f" on cpu {slot}" if slot is not None else ""))
                log = open(os.path.join(work_dir, "pilots", f"{name}.log"), "a")
                proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
                running[slot] = (name, proc, Sitting(name, slot))
            time.sleep(5)
            for slot, (name, proc, sitting) in list(running.items()):
                if proc.poll() is None:
                    sitting.cpu = max(sitting.cpu, process_cpu_seconds(proc.pid))
                    if sitting.cpu_before + sitting.cpu >= budget_s:
                        proc.send_signal(signal.SIGTERM)  # saves a checkpoint, exits 143
                        proc.wait()
                    elif time.time() - sitting.started >= sitting.credited_wall + CREDIT_EVERY_S:
                        sitting.credit()
                if proc.poll() is not None:
                    finish(slot)
    except KeyboardInterrupt:
        for slot in list(running):
            running[slot][1].send_signal(signal.SIGTERM)
            running[slot][1].wait()
            finish(slot)
        raise


def stage_eval(work_dir: str, pilots: list, eval_batches: int) -> None:
    for name in pilots:
        p = PILOTS[name]
        heldout = records_dir(work_dir, p["vocab"], p["max_seq_length"], "heldout")
        if not glob.glob(os.path.join(work_dir, "pilots", name, "ckpt-*.index")):
            continue
        args = [a for a in pilot_args(work_dir, name) if not a.startswith("--pretrain_")]
        run([sys.executable, "run_pretraining.py", *args, "--do_eval", "--eval_all_checkpoints",
             f"--pretrain_tfrecords={heldout}/pretrain_data.tfrecord-*",
             f"--num_eval_steps={eval_batches}", "--eval_batch_size=64"],
            log=os.path.join(work_dir, "pilots", f"{name}.eval.log"))


def exit_point(curve: list, flops: float) -> dict | None:
    for point in curve:
        if (point.get("masked_lm_accuracy", 0) > EXIT_MLM_ACC
                and point.get("disc_auc", 0) > EXIT_AUC):
            return {"step": point["global_step"], "flops": point["global_step"] * flops}
    return None


def build_report(work_dir: str, pilots: list) -> dict:
    """Per pilot its command, FLOPs, times and held-out curve; the fine-tuning results."""
    state = State(work_dir)
    report = {"exit_rule": {"masked_lm_accuracy": EXIT_MLM_ACC, "disc_auc": EXIT_AUC},
              "horizon_steps": HORIZON_STEPS, "pilots": {}}
    for name in pilots:
        curve_path = os.path.join(work_dir, "pilots", name, "results", "learning_curve.json")
        curve = json.load(open(curve_path))["checkpoints"] if os.path.exists(curve_path) else []
        f = flops_per_step(work_dir, name)
        steps = curve[-1]["global_step"] if curve else 0
        report["pilots"][name] = {
            "settings": PILOTS[name], "flops_per_step": f,
            "command": shlex.join(["python", "run_pretraining.py",
                                   *pilot_args(work_dir, name)]).replace(work_dir, "$STUDY"),
            "train_wall_s": round(state.wall(name)), "train_cpu_s": round(state.cpu(name)),
            "steps": steps, "flops": steps * f,
            "steps_per_core_s": round(steps / state.cpu(name), 3) if state.cpu(name) else None,
            "exit": exit_point(curve, f),
            "curve": [{"step": c["global_step"], "flops": c["global_step"] * f,
                       "mlm_acc": round(c.get("masked_lm_accuracy", 0), 4),
                       "mlm_loss": round(c.get("masked_lm_loss", 0), 4),
                       "disc_auc": round(c.get("disc_auc", 0), 4),
                       "disc_loss": round(c.get("disc_loss", 0), 4),
                       "disc_recall": round(c.get("disc_recall", 0), 4),
                       "sampled_acc": round(c.get("sampled_masked_lm_accuracy", 0), 4)}
                      for c in curve]}
    report["finetune"] = state.data.get("finetune", {})
    return report


def stage_report(work_dir: str, pilots: list, results_dir: str) -> dict:
    """Rewrites plateau_pilots.{json,md} whole, so it covers ``pilots`` and every other pilot
    on the books (a report for one pilot would otherwise drop the others' results)."""
    on_books = State(work_dir).data
    report = build_report(work_dir, [p for p in PILOTS if p in pilots or p in on_books])
    os.makedirs(results_dir, exist_ok=True)
    write_text_atomic(os.path.join(results_dir, "plateau_pilots.json"),
                      json.dumps(report, indent=2) + "\n")
    write_text_atomic(os.path.join(results_dir, "plateau_pilots.md"), format_markdown(report))
    return report


def stage_markdown(results_dir: str) -> bool:
    """plateau_pilots.md again from the committed plateau_pilots.json; False if it is absent."""
    path = os.path.join(results_dir, "plateau_pilots.json")
    if not os.path.exists(path):
        say(f"error: no {path}: run --stages=report first, or give --results_dir")
        return False
    with open(path) as f:
        report = json.load(f)
    write_text_atomic(os.path.join(results_dir, "plateau_pilots.md"), format_markdown(report))
    say(f"wrote {os.path.join(results_dir, 'plateau_pilots.md')} from {path}")
    return True


def format_markdown(report: dict) -> str:
    lines = ["# Plateau pilots (issue 21)", "",
             "Held-out masked-LM accuracy of the generator and replaced-token AUC of the "
             "discriminator, every checkpoint (`python benchmarks/plateau_pilots.py`). "
             f"Exit: MLM accuracy > {EXIT_MLM_ACC} and AUC > {EXIT_AUC}.", "",
             "| pilot | GFLOP/step | steps | core-min | wall min | FLOPs | last MLM acc | "
             "last AUC | left the plateau at |", "|---|---|---|---|---|---|---|---|---|"]
    for name, p in report["pilots"].items():
        last = p["curve"][-1] if p["curve"] else {}
        exit_ = p["exit"]
        lines.append(
            f"| {name} | {p['flops_per_step'] / 1e9:.0f} | {p['steps']} | "
            f"{p['train_cpu_s'] / 60:.0f} | {p['train_wall_s'] / 60:.0f} | {p['flops']:.2e} | "
            f"{last.get('mlm_acc', '-')} | {last.get('disc_auc', '-')} | "
            + (f"step {exit_['step']} ({exit_['flops']:.2e} FLOPs) |" if exit_
               else "not within the pilot |"))
    lines += [""] + finetune_table(report.get("finetune", {})) + ["## Curves", ""]
    for name, p in report["pilots"].items():
        lines += [f"### {name}", "", f"`{p['command']}`", "",
                  "| step | FLOPs | MLM acc | MLM loss | sampled acc | AUC | disc loss | "
                  "disc recall |", "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {c['step']} | {c['flops']:.2e} | {c['mlm_acc']} | {c['mlm_loss']} | "
                  f"{c['sampled_acc']} | {c['disc_auc']} | {c['disc_loss']} | "
                  f"{c['disc_recall']} |" for c in p["curve"]]
        lines.append("")
    return "\n".join(lines) + "\n"



def prepare_finetuning_data(work_dir: str, task: str) -> str:
    """<work_dir>/glue/finetuning_data/<task>/{train,dev}.tsv, once; returns <work_dir>/glue.

    Train sets are cut to their first FINETUNE_MAX_TRAIN examples; QNLI's dev set (the only
    split in shared/data) is shuffled with seed 0 and split into FINETUNE_MAX_TRAIN train
    and the rest dev."""
    import random
    root = os.path.join(work_dir, "glue")
    out = os.path.join(root, "finetuning_data", task)
    if os.path.exists(os.path.join(out, "dev.tsv")):
        return root
    os.makedirs(out, exist_ok=True)
    src = os.path.join(GLUE, GLUE_DIRS[task])
    header = task != "cola"

    def lines(name):
        with open(os.path.join(src, name), encoding="utf-8") as f:
            rows = f.read().splitlines()
        return (rows[:1], rows[1:]) if header else ([], rows)

    if task == "qnli":
        head, rows = lines("dev.tsv")
        random.Random(0).shuffle(rows)
        train, dev = rows[:FINETUNE_MAX_TRAIN], rows[FINETUNE_MAX_TRAIN:]
    else:
        head, train = lines("train.tsv")
        train = train[:FINETUNE_MAX_TRAIN]
        dev = lines("dev.tsv")[1]
    for name, rows in (("train", train), ("dev", dev)):  # dev last: it marks completion
        write_text_atomic(os.path.join(out, f"{name}.tsv"), "\n".join(head + rows) + "\n")
    say(f"finetune data {task}: {len(train)} train / {len(dev)} dev examples in {out}")
    return root


def finetune_arms(work_dir: str, pilot: str, steps: list) -> dict:
    """{arm name: init checkpoint (None: random init)}: ``random`` and ``<pilot>@<step>``."""
    arms = {"random": None}
    for step in steps:
        prefix = os.path.join(work_dir, "pilots", pilot, f"ckpt-{step}")
        if not os.path.exists(prefix + ".index"):
            have = sorted(int(p.rsplit("-", 1)[1].split(".")[0]) for p in glob.glob(
                os.path.join(work_dir, "pilots", pilot, "ckpt-*.index")))
            raise SystemExit(f"error: no checkpoint {prefix}; {pilot} has steps {have}")
        arms[f"{pilot}@{step}"] = prefix
    return arms


def stage_finetune(work_dir: str, pilot: str, steps: list, tasks: list) -> None:
    """Every arm x task, FINETUNE_SEEDS seeds each, through the fine-tuning driver;
    results kept in the state file (a finished pair is not run again)."""
    import keras
    from electra_tf.config import FinetuningConfig
    from electra_tf.finetuning.registry import task_class
    from electra_tf.training.finetune import FinetuneOptions, run_finetuning
    from electra_tf.training.run_directory import Terminated
    state = State(work_dir)
    results = state.data.get("finetune", {})
    model = PILOTS[pilot]["model"]
    vocab = vocab_file(work_dir, PILOTS[pilot]["vocab"])  # random init reads text alike
    for arm, checkpoint in finetune_arms(work_dir, pilot, steps).items():
        for task in tasks:
            key = f"{arm}:{task}"
            if key in results:
                continue
            data_dir = prepare_finetuning_data(work_dir, task)
            config = FinetuningConfig.from_preset("small", [task], {
                **FINETUNE_HPARAMS, "num_trials": FINETUNE_SEEDS,
                "model_hparam_overrides": model})
            base = os.path.join(work_dir, "finetune", arm.replace("@", "_at_"), task)
            options = FinetuneOptions(
                data_dir=data_dir, model_dir=os.path.join(base, "model"), results_dir=base,
                preprocessed_dir=os.path.join(work_dir, "finetune", "cache", task),
                init_checkpoint=checkpoint, vocab_file=vocab, seed=0,
                mixed_precision=None, quiet=True)
            say(f"finetune {key}: {FINETUNE_SEEDS} seeds from {checkpoint or 'random init'}")
            started = time.time()
            try:
                trials = run_finetuning(config, options)
            except (Terminated, KeyboardInterrupt) as e:  # the trial saved its checkpoint
                say(f"finetune {key}: {e or 'interrupted'}; re-run the same command to "
                    "resume it")
                return
            keras.backend.clear_session()
            metric = task_class(task).METRIC
            values = [trial[task][metric] for trial in trials]
            state.add_finetune(key, {"arm": arm, "task": task, "metric": metric,
                                     "values": values, "init_checkpoint": checkpoint,
                                     "wall_s": round(time.time() - started, 1)})
            for trial in range(1, FINETUNE_SEEDS + 1):
                subprocess.call(["rm", "-rf", f"{options.model_dir}_{trial}"])
            say(f"finetune {key}: {metric} " + ", ".join(f"{v:.2f}" for v in values))


def finetune_table(results: dict) -> list:
    """Markdown lines: arm x task (median, min-max of the seeds) and the task average.

    ``results``: the state file's ``finetune`` entries, "<arm>:<task>" -> {"arm", "task",
    "values" (one per seed), "wall_s"}."""
    import statistics
    if not results:
        return []
    arms = sorted({r["arm"] for r in results.values()},  # random first, then by step
                  key=lambda a: (a != "random", a.split("@")[0], int(a.split("@")[-1])
                                 if "@" in a else 0))
    tasks = [t for t in FINETUNE_TASKS if any(r["task"] == t for r in results.values())]
    lines = ["## Fine-tuning: ELECTRA along its curve against random initialisation", "",
             f"{FINETUNE_SEEDS} seeds each, {json.dumps(FINETUNE_HPARAMS)}, first "
             f"{FINETUNE_MAX_TRAIN} training examples (QNLI: its dev set split "
             f"{FINETUNE_MAX_TRAIN}/rest); cells: median (min-max). Regenerate with "
             "`python benchmarks/plateau_pilots.py --stages=finetune,report "
             "--finetune_pilot=... --finetune_steps=...` (from the committed "
             "plateau_pilots.json alone: `--stages=markdown`). Wall minutes count the sitting "
             "that finished each task (a task resumed after a stop lost its earlier part).", "",
             "| arm | " + " | ".join(tasks) + " | average: median (worst-best seed) | "
             "wall min |", "|---" * (len(tasks) + 3) + "|"]
    for arm in arms:
        cells, per_seed = [], []
        for task in tasks:
            r = results.get(f"{arm}:{task}")
            if r is None:
                cells.append("-")
                continue
            v = r["values"]
            cells.append(f"{statistics.median(v):.1f} ({min(v):.1f}-{max(v):.1f})")
            per_seed.append(v)
        average = ""
        if len(per_seed) == len(tasks):
            seeds = [statistics.mean(v[i] for v in per_seed)
                     for i in range(min(len(v) for v in per_seed))]
            average = f"{statistics.median(seeds):.1f} ({min(seeds):.1f}-{max(seeds):.1f})"
        wall = sum(r.get("wall_s", 0) for r in results.values() if r["arm"] == arm)
        lines.append(f"| {arm} | " + " | ".join(cells) + f" | {average} | {wall / 60:.0f} |")
    lines += ["", "Every seed (seed i: trial i, initialised and shuffled with seed i, in every arm "
              "and task):", "",
              "| arm | task | " + " | ".join(f"seed {i + 1}" for i in range(FINETUNE_SEEDS))
              + " |", "|---" * (FINETUNE_SEEDS + 2) + "|"]
    for arm in arms:
        for task in tasks:
            r = results.get(f"{arm}:{task}")
            if r is not None:
                lines.append(f"| {arm} | {task} | "
                             + " | ".join(f"{v:.2f}" for v in r["values"]) + " |")
    return lines + [""]


def preset_release(work_dir: str, pilot: str):
    """The packaged release of ``pilot``'s model: its hparams as run_pretraining.py's."""
    from electra_tf import presets
    p = PILOTS[pilot]
    hparams = {"model_size": "small", "model_hparam_overrides": p["model"],
               "vocab_size": vocab_size(work_dir, p["vocab"]), "do_lower_case": True,
               "max_seq_length": p["max_seq_length"],
               **({"generator_hidden_size": p["generator_hidden_size"]}
                  if "generator_hidden_size" in p else {})}
    disc, gen = presets.parameter_counts(presets.expected_shapes(
        presets.release_config(presets.Release(PRESET_NAME, hparams))))
    layers, width = p["model"]["num_hidden_layers"], p["model"]["hidden_size"]
    return presets.Release(
        PRESET_NAME, hparams, discriminator_params=disc, generator_params=gen,
        description=f"ELECTRA, {layers} layers x {width} ({disc / 1e6:.1f}M parameters), "
                    f"pre-trained by electra-tf on 100 MB of English Wikipedia on 2 CPU "
                    f"cores (L={p['max_seq_length']}); a demonstration, not a release",
        packaged=presets.packaged_dir(PRESET_NAME))


def stage_preset(work_dir: str, pilot: str, step: int) -> dict:
    """Packs ``pilot``'s ``ckpt-<step>`` as the packaged preset; returns its manifest."""
    import statistics
    from electra_tf import convert
    prefix = finetune_arms(work_dir, pilot, [step])[f"{pilot}@{step}"]
    release = preset_release(work_dir, pilot)
    report = build_report(work_dir, [pilot])
    entry = report["pilots"][pilot]
    point = next((c for c in entry["curve"] if c["step"] == step), None)
    finetune = {}
    for key, r in report["finetune"].items():
        if r["arm"] in ("random", f"{pilot}@{step}"):
            finetune.setdefault(r["arm"], {})[r["task"]] = {
                "metric": r["metric"], "median": round(statistics.median(r["values"]), 2),
                "seeds": [round(v, 2) for v in r["values"]]}
    facts = {"training": {
        "command": entry["command"] + f"  # stopped at step {step}",
        "step": step, "flops": step * entry["flops_per_step"],
        "flops_per_step": entry["flops_per_step"],
        "core_minutes_in_all": round(entry["train_cpu_s"] / 60)},
        "heldout": point, "finetune": finetune,
        "regenerate": f"python benchmarks/plateau_pilots.py --work_dir=$STUDY "
                      f"--stages=preset --finetune_pilot={pilot} --preset_step={step}"}
    manifest = convert.pack(prefix, release, facts=facts, overwrite=True)
    size = sum(os.path.getsize(os.path.join(release.packaged, f)) for f in manifest["files"])
    say(f"preset {PRESET_NAME}: {release.packaged}, {size / 2**20:.1f} MiB "
        f"({manifest['discriminator_params']:,} discriminator parameters)")
    return manifest


STAGES = ("data", "train", "eval", "finetune", "preset", "report", "markdown")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work_dir", default=os.path.join(ROOT, "data", "plateau_pilots"))
    parser.add_argument("--results_dir", default=os.path.join(ROOT, "benchmarks", "results"))
    parser.add_argument("--pilots", default=",".join(PILOTS),
                        help="comma-separated names of PILOTS")
    parser.add_argument("--stages", default="data,train,eval,report")
    parser.add_argument("--cpu_minutes", type=float, default=60.0,
                        help="training CPU time (core-minutes) of each pilot, cumulative over "
                             "sittings: 60 = half an hour of the 2-core machine")
    parser.add_argument("--cpus", default="",
                        help="comma-separated CPU sets (taskset -c) for pilots side by side")
    parser.add_argument("--heldout_files", type=int, default=2)
    parser.add_argument("--eval_batches", type=int, default=20)
    parser.add_argument("--finetune_pilot", default="",
                        help="stage finetune: the pilot whose checkpoints are fine-tuned")
    parser.add_argument("--finetune_steps", default="",
                        help="stage finetune: comma-separated checkpoint steps of the pilot")
    parser.add_argument("--finetune_tasks", default=",".join(FINETUNE_TASKS))
    parser.add_argument("--preset_step", type=int, default=0,
                        help="stage preset: the checkpoint step of --finetune_pilot to ship")
    args = parser.parse_args(argv)
    args.pilots = [p for p in args.pilots.split(",") if p]
    unknown = [p for p in args.pilots if p not in PILOTS]
    if unknown:
        parser.error(f"unknown pilot(s) {unknown}; known: {', '.join(PILOTS)}")
    unknown = [s for s in args.stages.split(",") if s not in STAGES]
    if unknown:
        parser.error(f"--stages: unknown {unknown}; known: {', '.join(STAGES)}")
    args.cpus = [c for c in args.cpus.split(",") if c]
    args.finetune_steps = [int(s) for s in args.finetune_steps.split(",") if s]
    args.finetune_tasks = [t for t in args.finetune_tasks.split(",") if t]
    if "preset" in args.stages.split(",") and (args.finetune_pilot not in PILOTS
                                               or args.preset_step <= 0):
        parser.error("--stages=preset needs --finetune_pilot (one of PILOTS) and --preset_step")
    if "finetune" in args.stages.split(","):
        if args.finetune_pilot not in PILOTS or not args.finetune_steps:
            parser.error("--stages=finetune needs --finetune_pilot (one of PILOTS) and "
                         "--finetune_steps")
        bad = [t for t in args.finetune_tasks if t not in FINETUNE_TASKS]
        if bad:
            parser.error(f"--finetune_tasks: unknown {bad}; known: {', '.join(FINETUNE_TASKS)}")
    return args


def _stop(signum, frame):
    raise KeyboardInterrupt  # stage_train stops its runs (each saves) and records them


def main(argv=None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)  # also when started in the background (ignored there)
    stages = args.stages.split(",")
    if stages != ["markdown"]:
        os.makedirs(args.work_dir, exist_ok=True)
    if "data" in stages:
        stage_data(args.work_dir, args.pilots, args.heldout_files)
    if "train" in stages:
        try:
            stage_train(args.work_dir, args.pilots, args.cpu_minutes, args.cpus)
        except KeyboardInterrupt:
            say("stopped: every pilot saved a checkpoint; re-run the same command to resume")
            return 130
    if "eval" in stages:
        stage_eval(args.work_dir, args.pilots, args.eval_batches)
    if "finetune" in stages:
        stage_finetune(args.work_dir, args.finetune_pilot, args.finetune_steps,
                       args.finetune_tasks)
    if "preset" in stages:
        stage_preset(args.work_dir, args.finetune_pilot, args.preset_step)
    if "markdown" in stages and not stage_markdown(args.results_dir):  # needs no work_dir
        return 2
    if "report" in stages:
        report = stage_report(args.work_dir, args.pilots, args.results_dir)
        for name, p in report["pilots"].items():
            say(f"{name}: {p['steps']} steps, exit " + (str(p["exit"]) if p["exit"] else "no"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
