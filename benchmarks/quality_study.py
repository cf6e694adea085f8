"""A small replication of ELECTRA's central result, resumable across sittings.

At equal pre-training FLOPs, replaced-token detection (ELECTRA) should fine-tune better
than masked-LM pre-training (MLM), and both better than no pre-training (random init).
One command runs the whole study through the project's public entry points:

    python benchmarks/quality_study.py                  # --scale=cpu
    python benchmarks/quality_study.py --scale=smoke --work_dir=/tmp/qs_smoke
    python benchmarks/quality_study.py --scale=gpu --work_dir=data/quality_study_gpu \\
        --results_dir=benchmarks/results/gpu

Stages (``--stages``, default all, in this order):

  data      build_pretraining_dataset.py -> <work_dir>/pretrain_tfrecords, and the GLUE
            subsets (finetuning_eval.prepare_data) -> <work_dir>/glue
  pretrain  run_pretraining.py per arm (ELECTRA for T steps, MLM (and Electric) for the
            number of steps with the same FLOPs); output in <work_dir>/<arm>.log, the
            training curve in <model_dir>/train_log.jsonl (the driver's JSON log)
  eval      run_pretraining.py --do_eval --eval_all_checkpoints per arm: the pre-training
            metrics of every checkpoint (<model_dir>/results/learning_curve.json)
  finetune  every arm (and ``random``) x SST-2, MRPC, CoLA, several seeds, in-process
            through electra_tf.training.finetune.run_finetuning
  report    <results_dir>/quality_study.{json,md,png}

Re-running the same command continues where it stopped: finished stages are skipped
(<work_dir>/study_state.json), an unfinished pre-training run resumes from its latest
checkpoint, and a run_pretraining.py already training an arm of this study (e.g. started
by hand with the same command) is waited for, not started twice.

Scales and what they cost (fine-tuning of every arm: the paper's learning rate for Small,
3e-4 (Table 7; the code default is 1e-4), layer-wise decay 0.8, batch 32):

  smoke  2-layer H64 model, 10 ELECTRA steps at batch 8 and L=32 on one file of the corpus
         bundled in the package; fine-tuning on 64 examples per task (dev sets cut to 128)
         at L=32, 1 epoch, 2 seeds. About 2.5 minutes on a 2-core CPU busy with two other
         trainings (less when idle): a test of the pipeline, the numbers mean nothing.
  cpu    4-layer H256 discriminator (E128, generator 0.25 x width), batch 32, L=128,
         peak lr 5e-4 for every arm (the paper's for Small; at 1e-3 the first sitting's
         ELECTRA discriminator collapsed to one output for all positions and MLM stalled),
         10% warm-up, 4000 ELECTRA steps (MLM: the steps with the same FLOPs, 6124), a
         checkpoint every 1/8 of a run, each evaluated on 20 batches; fine-tuning at L=64,
         2 epochs, 3 seeds on the first 3000 training examples of SST-2, MRPC and CoLA,
         full dev sets. On 2 cores the two pre-training runs side by side take about
         2.5 hours when the machine is otherwise idle (0.4-0.5 steps/s each), longer when
         it is not: the study is meant to span sittings. Fine-tuning, 9 arm x task pairs
         x 3 seeds, takes about half an hour.
  gpu    ELECTRA-Small as in the paper (the ``small`` preset: 12 layers, H256, E128,
         generator 0.25) at batch 128, lr 5e-4, 10% warm-up (10k steps), XLA and bfloat16,
         for 100k ELECTRA steps (MLM: the same FLOPs, 132k steps); fine-tuning at L=128,
         3 epochs, 3 seeds on the full training sets. The paper trains ELECTRA-Small for
         1M steps in 4 days on one V100 GPU; the ELECTRA README says the small model is
         decent after 200k steps (10 hours on a V100). By those figures one 100k-step arm
         takes 5-10 hours on a V100-class GPU; the arms run one after the other.

Numbers of a scale can be shrunk for tests (--max_steps_override,
--train_batch_size_override, --max_train_override, ...); a work_dir keeps the settings of
its first sitting and refuses others. The plot needs matplotlib (pip install -e ".[bench]").
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import math
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import finetuning_eval  # noqa: E402  (benchmarks/finetuning_eval.py)
from electra_tf.io_utils import write_text_atomic  # noqa: E402
from electra_tf.training import train_log  # noqa: E402  (no TensorFlow)

STAGES = ("data", "pretrain", "eval", "finetune", "report")
TASKS = ("sst", "mrpc", "cola")  # the names of electra_tf.finetuning.registry
STATE_FILE = "study_state.json"
BUNDLED_CORPUS = os.path.join(ROOT, "electra_tf", "assets", "corpus")

# Pre-training objectives: extra run_pretraining.py flags and PretrainingConfig hparams.
# ``random`` is the floor: no pre-training, fine-tuned from a random initialisation.
ARMS = {
    "electra": {"flags": [], "hparams": {}},
    "mlm": {"flags": ["--noelectra_objective"], "hparams": {"electra_objective": False}},
    "electric": {"flags": ["--electric_objective", "--noelectra_objective"],
                 "hparams": {"electra_objective": False, "electric_objective": True}},
    "random": None,
}

SCALES = {
    "smoke": {
        "model_hparam_overrides": {"num_hidden_layers": 2, "hidden_size": 64,
                                   "intermediate_size": 256, "num_attention_heads": 1},
        "max_seq_length": 32, "electra_steps": 10, "train_batch_size": 8,
        "learning_rate": {"electra": "1e-3", "mlm": "1e-3", "electric": "1e-3"},
        "log_every_steps": 2, "jit_compile": None,
        "mixed_precision": None, "num_eval_steps": 2, "parallel": 2, "poll_s": 0.5,
        "data": {"corpus": os.path.join(BUNDLED_CORPUS, "wiki_00.gz"), "num_out_files": 2,
                 "num_processes": 1},
        "finetune": {"max_seq_length": 32, "num_train_epochs": 1, "num_trials": 2,
                     "learning_rate": 3e-4,
                     "max_train": {"sst": 64, "mrpc": 64, "cola": 64}, "max_dev": 128},
    },
    "cpu": {
        "model_hparam_overrides": {"num_hidden_layers": 4, "hidden_size": 256,
                                   "intermediate_size": 1024, "num_attention_heads": 4},
        "max_seq_length": None, "electra_steps": 4000, "train_batch_size": 32,
        # The paper's lr for Small. At 1e-3 the ELECTRA discriminator collapsed by step 250
        # (one output for every position, AUC 0.52) and MLM stalled (first sitting).
        "learning_rate": {"electra": "5e-4", "mlm": "5e-4", "electric": "5e-4"},
        "log_every_steps": 50, "jit_compile": None,
        "mixed_precision": None, "num_eval_steps": 20, "parallel": 2, "poll_s": 10,
        "data": {"corpus": None, "num_out_files": 16, "num_processes": 2},
        # Fine-tuning LR: the paper's 3e-4 for Small (Table 7), not the code's 1e-4.
        # 2 epochs of 3000 examples (~190 steps): 1 epoch of 2000 (63 steps) left every
        # arm, random init included, at the majority class.
        "finetune": {"max_seq_length": 64, "num_train_epochs": 2, "num_trials": 3,
                     "learning_rate": 3e-4,
                     "max_train": {"sst": 3000, "mrpc": 3000, "cola": 3000}, "max_dev": None},
    },
    "gpu": {
        "model_hparam_overrides": {}, "max_seq_length": None, "electra_steps": 100000,
        "train_batch_size": 128, "log_every_steps": 50,
        "learning_rate": {"electra": "5e-4", "mlm": "5e-4", "electric": "5e-4"},
        "jit_compile": True, "mixed_precision": "bfloat16", "num_eval_steps": 100,
        "parallel": 1, "poll_s": 30,
        "data": {"corpus": None, "num_out_files": 16, "num_processes": 2},
        "finetune": {"max_seq_length": 128, "num_train_epochs": 3, "num_trials": 3,
                     "learning_rate": 3e-4,
                     "max_train": {"sst": None, "mrpc": None, "cola": None}, "max_dev": None},
    },
}


class StudyError(Exception):
    """A user-facing error: one line, exit status 1."""


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def fmt_duration(seconds) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


# ---------------------------------------------------------------------------
# Settings and the arms' commands
# ---------------------------------------------------------------------------

def build_settings(args) -> dict:
    """The scale's settings with the command-line overrides applied (JSON-able)."""
    scale = json.loads(json.dumps(SCALES[args.scale]))  # a deep copy
    for key in ("poll_s", "parallel"):  # how to run, not what
        scale.pop(key)
    scale["data"].pop("corpus")  # a path: see corpus_dir()
    if args.max_steps_override:
        scale["electra_steps"] = args.max_steps_override
    if args.train_batch_size_override:
        scale["train_batch_size"] = args.train_batch_size_override
    if args.num_eval_steps_override:
        scale["num_eval_steps"] = args.num_eval_steps_override
    if args.jit_compile is not None:
        scale["jit_compile"] = args.jit_compile
    if args.mixed_precision is not None:
        scale["mixed_precision"] = None if args.mixed_precision == "none" else args.mixed_precision
    scale["extra_flags"] = (  # of run_pretraining.py; None: its default (XLA on one GPU)
        ([] if scale["jit_compile"] is None
         else ["--jit_compile" if scale["jit_compile"] else "--nojit_compile"])
        + ([f"--mixed_precision={scale['mixed_precision']}"] if scale["mixed_precision"]
           else []))
    ft = scale["finetune"]
    if args.max_train_override:
        ft["max_train"] = {t: args.max_train_override for t in ft["max_train"]}
    if args.max_dev_override:
        ft["max_dev"] = args.max_dev_override
    if args.num_trials_override:
        ft["num_trials"] = args.num_trials_override
    # The hparams JSON of the pre-training command, key order as the cpu study's commands.
    hparams = {}
    if scale["model_hparam_overrides"]:
        hparams["model_hparam_overrides"] = scale["model_hparam_overrides"]
    hparams["keep_checkpoint_max"] = 0
    if scale["max_seq_length"]:
        hparams["max_seq_length"] = scale["max_seq_length"]
    scale["pretrain_hparams"] = hparams
    return {"scale": args.scale, **scale}


def flops_per_step(settings: dict, arm: str) -> float:
    """Training FLOPs of one step of ``arm`` (electra_tf.flops, the paper's convention)."""
    from electra_tf.config import PretrainingConfig
    from electra_tf.flops import flops_for_config
    config = PretrainingConfig.from_preset("small", {
        **settings["pretrain_hparams"], **ARMS[arm]["hparams"],
        "train_batch_size": settings["train_batch_size"], "num_train_steps": 1})
    return flops_for_config(config).train_flops


def _from_root(path: str) -> str:
    """``path`` relative to the repository root when inside it, else absolute."""
    rel = os.path.relpath(path, ROOT)
    return os.path.abspath(path) if rel == ".." or rel.startswith(".." + os.sep) else rel


def work_dir_arg(work_dir: str) -> str:
    """The --data_dir of the subprocesses (they run in ROOT)."""
    return _from_root(work_dir)


def plan_arm(settings: dict, arm: str, work_dir: str) -> dict:
    """Steps, warm-up, checkpoint cadence, FLOPs and the run_pretraining.py command of an arm.

    ELECTRA trains ``electra_steps``; the other objectives the number of steps with the
    same FLOPs, round(T_e * F_electra / F_arm).
    """
    f_arm = flops_per_step(settings, arm)
    f_electra = f_arm if arm == "electra" else flops_per_step(settings, "electra")
    steps = int(round(settings["electra_steps"] * f_electra / f_arm))
    warmup = steps // 10
    save = math.ceil(steps / 8)
    args = [f"--data_dir={work_dir_arg(work_dir)}", f"--model_name={arm}",
            *ARMS[arm]["flags"], "--hparams=" + json.dumps(settings["pretrain_hparams"]),
            f"--num_train_steps={steps}", f"--num_warmup_steps={warmup}",
            f"--learning_rate={settings['learning_rate'][arm]}",
            f"--train_batch_size={settings['train_batch_size']}",
            f"--save_checkpoints_steps={save}",
            f"--log_every_steps={settings['log_every_steps']}", *settings["extra_flags"]]
    model_dir = os.path.join(work_dir, "models", arm)
    # The PretrainingConfig these flags give (as run_pretraining.py builds it).
    hparams = {**settings["pretrain_hparams"], **ARMS[arm]["hparams"],
               "num_train_steps": steps, "num_warmup_steps": warmup,
               "learning_rate": float(settings["learning_rate"][arm]),
               "train_batch_size": settings["train_batch_size"],
               "save_checkpoints_steps": save}
    return {"arm": arm, "steps": steps, "warmup": warmup, "save_checkpoints_steps": save,
            "learning_rate": settings["learning_rate"][arm], "hparams": hparams,
            "flops_per_step": f_arm, "flops": steps * f_arm, "args": args,
            "eval_args": args + ["--do_eval", "--eval_all_checkpoints",
                                 f"--num_eval_steps={settings['num_eval_steps']}"],
            "model_dir": model_dir,
            "done_marker": os.path.join(model_dir, "tf1", f"model.ckpt-{steps}.index"),
            "log": os.path.join(work_dir, f"{arm}.log"),
            "eval_log": os.path.join(work_dir, f"{arm}.eval.log"),
            "learning_curve": os.path.join(model_dir, "results", "learning_curve.json")}


def command_line(script: str, args: list) -> list:
    return [sys.executable, script, *args]


def shell(cmd: list) -> str:
    """A command as it would be typed in ROOT (``python`` for the interpreter)."""
    return shlex.join(["python", *cmd[1:]])


# ---------------------------------------------------------------------------
# The pre-training log (<model_dir>/train_log.jsonl, written by the driver)
# ---------------------------------------------------------------------------

def pretraining_log(model_dir: str) -> dict:
    """The training log of the run in ``model_dir`` (the driver's ``train_log.jsonl``,
    ``electra_tf.training.train_log``), over all its sittings.

    Returns {"curve": [the step records by step; a step logged again by a later sitting
    (after resuming from an earlier checkpoint) takes the later record], "sittings": the
    number of invocations that trained it, "elapsed_s" / "cpu_s": training wall and CPU
    time summed over the sittings (start-up excluded; None without a record)}.
    """
    records = train_log.read_train_log(model_dir)
    time_spent = train_log.training_time(records)
    return {"curve": train_log.training_curve(records),
            "sittings": len(train_log.sittings(records)),
            "elapsed_s": time_spent["wall_s"], "cpu_s": time_spent["cpu_s"]}


def curve_point(record: dict) -> dict:
    """A step record as the report's training curve has it: ``step``, the losses by short
    name (``total``, ``mlm``, ``disc``) and ``mlm_acc``."""
    stats = record["stats"]
    return {"step": record["step"],
            **{k[:-len("_loss")]: v for k, v in stats.items() if k.endswith("_loss")},
            "mlm_acc": stats.get("masked_lm_accuracy")}


def progress_line(record: dict) -> str:
    """One line of a step record: ``step N/T | 0.45 steps/s | elapsed 3m05s | loss total=..
    mlm=.. disc=.. | mlm_acc=..``."""
    point = curve_point(record)
    losses = " ".join(f"{k}={v:.4f}" for k, v in point.items()
                      if k not in ("step", "mlm_acc") and v is not None)
    rate = record.get("steps_per_s")
    return (f"step {record['step']}/{record['total_steps']} | "
            + (f"{rate:.2f} steps/s | " if rate is not None else "")
            + f"elapsed {fmt_duration(record.get('elapsed_s'))} | loss {losses}"
            + (f" | mlm_acc={point['mlm_acc']:.3f}" if point["mlm_acc"] is not None else ""))


def read_log(path: str) -> str:
    if not os.path.exists(path):
        return ""
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def last_lines(path: str, n: int = 4) -> list:
    noise = ("I0000 ", "W0000 ", "E0000 ", "WARNING: All log messages")
    lines = [l for l in read_log(path).splitlines() if l.strip() and not l.startswith(noise)]
    return lines[-n:]


# ---------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------

class Study:
    """The work directory, its state file and this sitting's bookkeeping."""

    def __init__(self, args, settings):
        self.args = args
        self.settings = settings
        self.work_dir = args.work_dir
        self.state_path = os.path.join(self.work_dir, STATE_FILE)
        self.state = {"version": 1, "settings": None, "stages": {}}
        if os.path.exists(self.state_path):
            with open(self.state_path, encoding="utf-8") as f:
                self.state = json.load(f)
        self.ran, self.skipped, self.failed = [], [], []
        self.plans = {}

    def check_settings(self) -> None:
        old = self.state.get("settings")
        if old is None:
            self.state["settings"] = self.settings
            return
        if old != self.settings:
            keys = sorted(k for k in set(old) | set(self.settings)
                          if old.get(k) != self.settings.get(k))
            raise StudyError(
                f"{self.work_dir} holds a study with other settings (scale={old.get('scale')}; "
                f"differs in {', '.join(keys)}): pass the same options or another --work_dir")

    def record(self, name: str) -> dict:
        return self.state["stages"].setdefault(name, {})

    def done(self, name: str) -> bool:
        return bool(self.state["stages"].get(name, {}).get("done"))

    def save(self) -> None:
        self.state["last_sitting"] = {"ran": self.ran, "skipped": self.skipped,
                                      "failed": self.failed}
        write_text_atomic(self.state_path, json.dumps(self.state, indent=1) + "\n")

    def plan(self, arm: str) -> dict:
        if arm not in self.plans:
            self.plans[arm] = plan_arm(self.settings, arm, self.work_dir)
        return self.plans[arm]

    def finish(self, name: str, ran: bool = True, **fields) -> dict:
        """Marks a stage done (``ran``: by this sitting) with ``fields``; saves the state."""
        rec = self.record(name)
        rec.update(done=True, **fields)
        rec.pop("error", None)
        if ran:
            self.ran.append(name)
        self.save()
        return rec

    def skip(self, name: str, why: str = "done") -> None:
        self.skipped.append(name)
        say(f"[{name}] skipped ({why})")

    def fail(self, name: str, why: str) -> None:
        self.failed.append(name)
        rec = self.record(name)
        rec["done"] = False
        rec["error"] = why
        self.save()
        say(f"[{name}] FAILED: {why}")


@contextlib.contextmanager
def study_lock(work_dir: str):
    """One quality_study.py per work_dir at a time."""
    import fcntl
    os.makedirs(work_dir, exist_ok=True)
    with open(os.path.join(work_dir, ".quality_study.lock"), "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise StudyError(f"another quality_study.py is running on {work_dir}") from None
        yield


# ---------------------------------------------------------------------------
# Stage: data
# ---------------------------------------------------------------------------

def _shards(directory: str) -> list:
    return sorted(glob.glob(os.path.join(directory, "pretrain_data.tfrecord-*")))


def _shards_complete(directory: str) -> bool:
    """Every shard of one ``pretrain_data.tfrecord-<i>-of-<n>`` set is there."""
    names = {os.path.basename(p) for p in _shards(directory)}
    totals = {re.sub(r".*-of-", "", n) for n in names}
    if len(totals) != 1 or not next(iter(totals)).isdigit():
        return False
    n = int(totals.pop())
    return all(f"pretrain_data.tfrecord-{i}-of-{n}" in names for i in range(n))


def corpus_dir(study: Study) -> str:
    return study.args.corpus_dir or SCALES[study.args.scale]["data"]["corpus"] or os.path.join(
        os.path.dirname(ROOT), "shared", "data", "corpus")


def stage_data(study: Study) -> None:
    name = "data"
    out = os.path.join(study.work_dir, "pretrain_tfrecords")
    if study.done(name) or _shards_complete(out):
        if not study.done(name):
            study.finish(name, ran=False, note="existing TFRecords")
        study.skip(name, "done" if study.done(name) else "TFRecords exist")
    else:
        data = study.settings["data"]
        args = [f"--corpus_dir={corpus_dir(study)}", f"--output_dir={out}",
                f"--num_processes={data['num_processes']}",
                f"--num_out_files={data['num_out_files']}",
                f"--max_seq_length={study.settings['max_seq_length'] or 128}", "--noprogress"]
        if _shards(out):
            args.append("--overwrite")  # the leftovers of an interrupted build
        cmd = command_line("build_pretraining_dataset.py", args)
        log = os.path.join(study.work_dir, "data.log")
        say(f"[{name}] building pre-training TFRecords: {shell(cmd)} (log: {log})")
        started = time.time()
        rc = run_logged(cmd, log)
        if rc != 0:
            study.fail(name, f"build_pretraining_dataset.py exited with {rc}; "
                       + " / ".join(last_lines(log, 2)))
        else:
            study.finish(name, wall_s=time.time() - started, command=shell(cmd))
            summary = [l for l in last_lines(log, 6) if l.startswith(("documents:", "wrote"))]
            say(f"[{name}] done in {fmt_duration(time.time() - started)}"
                + (": " + "; ".join(summary) if summary else ""))
    for task in study.args.tasks:
        prepare_glue(study, task)


def glue_dir(study: Study) -> str:
    return study.args.glue_dir or os.path.join(finetuning_eval.SHARED, "glue")


def prepare_glue(study: Study, task: str, quiet: bool = False) -> None:
    """<work_dir>/glue/finetuning_data/<task>/ via finetuning_eval.prepare_data, once."""
    name = f"data:glue:{task}"
    out = os.path.join(study.work_dir, "glue", "finetuning_data", task)
    if study.done(name) and os.path.exists(os.path.join(out, "dev.tsv")):
        if not quiet:
            study.skip(name)
        return
    ft = study.settings["finetune"]
    max_train = ft["max_train"][task]
    source = os.path.abspath(glue_dir(study))
    saved = finetuning_eval.SHARED
    with tempfile.TemporaryDirectory(prefix="quality-study-glue-") as tmp:
        if os.path.basename(source) == "glue":
            finetuning_eval.SHARED = os.path.dirname(source)
        else:  # prepare_data reads <SHARED>/glue/<task dir>
            os.symlink(source, os.path.join(tmp, "glue"))
            finetuning_eval.SHARED = tmp
        try:
            finetuning_eval.prepare_data(os.path.join(study.work_dir, "glue"), [task],
                                         max_train, seed=0)
        finally:
            finetuning_eval.SHARED = saved
    if ft["max_dev"]:
        dev = os.path.join(out, "dev.tsv")
        finetuning_eval.write_head(dev, dev, ft["max_dev"], header=task != "cola")
    counts = {}
    for split in ("train", "dev"):
        with open(os.path.join(out, f"{split}.tsv"), encoding="utf-8") as f:
            counts[split] = sum(1 for _ in f) - (task != "cola")
    study.finish(name, examples=counts, max_train=max_train)
    say(f"[{name}] {counts['train']} train / {counts['dev']} dev examples in {out}")


def spawn(cmd: list, log: str) -> subprocess.Popen:
    """Starts ``cmd`` in ROOT, stdout and stderr appended to ``log`` after a header line."""
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, "ab") as f:
        f.write(f"=== quality_study {time.strftime('%Y-%m-%d %H:%M:%S')}: {shell(cmd)}\n"
                .encode())
        f.flush()
        # Its own session: Ctrl-C reaches this script only, which passes one SIGINT on
        # (stop()); SIGINT as default there (a shell ignores it in background jobs), so
        # that run_pretraining.py saves a checkpoint on the way out.
        return subprocess.Popen(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                                env=_child_env(), start_new_session=True,
                                preexec_fn=_default_sigint)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stop(procs: list, timeout: float = 120) -> None:
    """Interrupts our subprocesses (SIGINT: a pre-training run saves a checkpoint) and waits;
    terminates those still running after ``timeout`` s."""
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.send_signal(signal.SIGINT)
    deadline = time.time() + timeout
    for proc in procs:
        try:
            proc.wait(timeout=max(1.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)


def run_logged(cmd: list, log: str) -> int:
    proc = spawn(cmd, log)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        stop([proc], timeout=30)
        raise


def _child_env() -> dict:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONUNBUFFERED"] = "1"
    return env


# ---------------------------------------------------------------------------
# Stage: pretrain
# ---------------------------------------------------------------------------

def find_running_pretraining(work_dir: str, arm: str, exclude=()):
    """The pid of a run_pretraining.py (not --do_eval) training ``arm`` in ``work_dir``."""
    target = os.path.realpath(work_dir)
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit() or int(entry) in exclude or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if (not any(a.endswith("run_pretraining.py") for a in argv)
                or any(a.split("=")[0] in ("--do_eval", "--eval_all_checkpoints",
                                           "--eval_checkpoint") for a in argv)):
            continue
        values = {}
        for i, a in enumerate(argv):
            for flag in ("--data_dir", "--model_name"):
                if a.startswith(flag + "="):
                    values[flag] = a.split("=", 1)[1]
                elif a == flag and i + 1 < len(argv):
                    values[flag] = argv[i + 1]
        data_dir = values.get("--data_dir")
        if (data_dir and values.get("--model_name") == arm
                and os.path.realpath(os.path.join(cwd, data_dir)) == target):
            return int(entry)
    return None


def run_settings_mismatch(plan: dict):
    """Why the run in the arm's model_dir cannot continue as this study's arm, or None.

    run_pretraining.py writes <model_dir>/pretraining_config.json when it starts; a run
    begun with other hyperparameters (say another learning rate) must not be resumed, or
    counted, as this arm.
    """
    path = os.path.join(plan["model_dir"], "pretraining_config.json")
    if not os.path.exists(path):
        return None
    from electra_tf.config import PretrainingConfig
    with open(path, encoding="utf-8") as f:
        existing = json.load(f)
    ours = PretrainingConfig.from_preset("small", plan["hparams"]).to_dict()
    keys = sorted(k for k in ours if k not in ("do_train", "do_eval")
                  and existing.get(k) != ours[k])
    if not keys:
        return None
    return (f"{plan['model_dir']} was started with other settings than this study's "
            "command: " + ", ".join(f"{k} {existing.get(k)!r} there, {ours[k]!r} here"
                                    for k in keys)
            + " (move that run away, or use another --work_dir)")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):  # a zombie is not running
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    return True


class _Run:
    """One pre-training sitting: a subprocess of ours or another process we wait for."""

    def __init__(self, arm, plan, proc=None, pid=None):
        self.arm, self.plan, self.proc, self.pid = arm, plan, proc, pid
        self.started = time.time()
        # Only the records this sitting appends to the run's train_log.jsonl are shown.
        self.log_offset = train_log.follow_train_log(plan["model_dir"])[1]
        self.last_line = None

    def poll(self):
        """None while running, else the exit status (0 for another process that ended)."""
        if self.proc is not None:
            return self.proc.poll()
        return None if _pid_alive(self.pid) else 0

    def new_progress(self):
        """A line of the latest step the run logged since the last call, or None."""
        records, self.log_offset = train_log.follow_train_log(self.plan["model_dir"],
                                                              self.log_offset)
        steps = [r for r in records if r.get("event") == "step"]
        return progress_line(steps[-1]) if steps else None


def stage_pretrain(study: Study, arms: list) -> None:
    todo = []
    for arm in arms:
        plan = study.plan(arm)
        name = f"pretrain:{arm}"
        mismatch = run_settings_mismatch(plan)
        if mismatch:
            study.fail(name, mismatch)
            continue
        if study.done(name) or os.path.exists(plan["done_marker"]):
            if not study.done(name):  # finished by a run we did not start
                study.finish(name, ran=False, steps=plan["steps"])
            study.skip(name, "done" if study.state["stages"][name].get("sittings")
                       else f"{os.path.basename(plan['done_marker'])} exists")
            continue
        todo.append(arm)
    if not todo:
        return
    parallel = study.args.parallel_pretraining or SCALES[study.args.scale]["parallel"]
    poll_s = SCALES[study.args.scale]["poll_s"]
    running: dict = {}
    pending = list(todo)
    interrupted = False
    try:
        while pending or running:
            while pending and len(running) < parallel:
                arm = pending.pop(0)
                running[arm] = _start_pretraining(study, arm, running)
            time.sleep(poll_s)
            for arm, run in list(running.items()):
                line = run.new_progress()
                if line and line != run.last_line:
                    run.last_line = line
                    say(f"[pretrain:{arm}] {line}")
                rc = run.poll()
                _update_sitting(study, arm, run, rc)
                if rc is None:
                    continue
                del running[arm]
                _finish_pretraining(study, arm, run, rc, pending)
    except KeyboardInterrupt:
        interrupted = True
        say("[pretrain] interrupted: waiting for the runs to save a checkpoint "
            "(re-run the same command to resume)")
        stop([run.proc for run in running.values() if run.proc is not None])
        for arm, run in running.items():
            _update_sitting(study, arm, run, run.poll())
        raise
    finally:
        if not interrupted:
            study.save()


def _start_pretraining(study: Study, arm: str, running: dict) -> _Run:
    plan = study.plan(arm)
    name = f"pretrain:{arm}"
    ours = {r.proc.pid for r in running.values() if r.proc is not None}
    other = find_running_pretraining(study.work_dir, arm, exclude=ours)
    rec = study.record(name)
    rec.update(steps=plan["steps"], done=False)
    rec.setdefault("sittings", [])
    if other is not None:
        say(f"[{name}] process {other} is already training this arm: waiting for it "
            f"(log: {plan['log']})")
        run = _Run(arm, plan, pid=other)
        rec["sittings"].append({"started": time.strftime("%Y-%m-%d %H:%M:%S"),
                                "wall_s": 0.0, "external_pid": other})
    else:
        cmd = command_line("run_pretraining.py", plan["args"])
        proc = spawn(cmd, plan["log"])
        resumed = pretraining_log(plan["model_dir"])["curve"]
        at = f" (log reached step {resumed[-1]['step']})" if resumed else ""
        say(f"[{name}] running{at}: {shell(cmd)} (log: {plan['log']})")
        run = _Run(arm, plan, proc=proc)
        rec["command"] = shell(cmd)
        rec["sittings"].append({"started": time.strftime("%Y-%m-%d %H:%M:%S"), "wall_s": 0.0})
    study.save()
    return run


def _update_sitting(study: Study, arm: str, run: _Run, rc) -> None:
    rec = study.record(f"pretrain:{arm}")
    sitting = rec["sittings"][-1]
    sitting["wall_s"] = time.time() - run.started
    if rc is not None:
        sitting["returncode"] = rc
    rec["wall_s"] = sum(s["wall_s"] for s in rec["sittings"])
    study.save()


def _finish_pretraining(study, arm, run, rc, pending) -> None:
    plan = study.plan(arm)
    name = f"pretrain:{arm}"
    rec = study.record(name)
    if os.path.exists(plan["done_marker"]):
        study.finish(name)
        say(f"[{name}] done: {plan['steps']} steps, {fmt_duration(rec['wall_s'])} in all "
            "sittings")
    elif run.proc is None:  # the other process stopped before the end: continue it
        curve = pretraining_log(plan["model_dir"])["curve"]
        say(f"[{name}] process {run.pid} stopped (log at step "
            f"{curve[-1]['step'] if curve else 0}/{plan['steps']}): resuming the run")
        pending.insert(0, arm)
    else:
        study.fail(name, f"run_pretraining.py exited with {rc} before step {plan['steps']} "
                   f"(log {plan['log']}): " + " / ".join(last_lines(plan["log"], 3)))


# ---------------------------------------------------------------------------
# Stage: eval
# ---------------------------------------------------------------------------

def read_learning_curve(plan: dict) -> list:
    if not os.path.exists(plan["learning_curve"]):
        return []
    with open(plan["learning_curve"], encoding="utf-8") as f:
        points = json.load(f).get("checkpoints", [])
    return sorted(points, key=lambda p: p["global_step"])


def stage_eval(study: Study, arms: list) -> None:
    """The pre-training metrics of every checkpoint of each arm, the arms side by side."""
    todo = []
    for arm in arms:
        plan = study.plan(arm)
        name = f"eval:{arm}"
        if study.done(name):
            study.skip(name)
        elif not os.path.exists(plan["done_marker"]):
            study.fail(name, f"pre-training of {arm} is not finished "
                       f"({plan['done_marker']} missing)")
        else:
            todo.append(arm)
    parallel = study.args.parallel_pretraining or SCALES[study.args.scale]["parallel"]
    running = {}
    try:
        _eval_loop(study, todo, running, parallel)
    except KeyboardInterrupt:
        stop([proc for proc, _, _ in running.values()], timeout=30)
        raise


def _eval_loop(study: Study, todo: list, running: dict, parallel: int) -> None:
    while todo or running:
        while todo and len(running) < parallel:
            arm = todo.pop(0)
            plan = study.plan(arm)
            cmd = command_line("run_pretraining.py", plan["eval_args"])
            n_ckpts = len(glob.glob(os.path.join(plan["model_dir"], "ckpt-*.index")))
            say(f"[eval:{arm}] evaluating {n_ckpts} checkpoint(s) (those not in "
                f"learning_curve.json yet), {study.settings['num_eval_steps']} batches each: "
                f"{shell(cmd)} (log: {plan['eval_log']})")
            running[arm] = (spawn(cmd, plan["eval_log"]), time.time(), cmd)
        time.sleep(SCALES[study.args.scale]["poll_s"] / 2)
        for arm, (proc, started, cmd) in list(running.items()):
            if proc.poll() is None:
                continue
            del running[arm]
            _finish_eval(study, arm, proc.returncode, time.time() - started, cmd)


def _finish_eval(study: Study, arm: str, rc: int, wall: float, cmd: list) -> None:
    plan = study.plan(arm)
    name = f"eval:{arm}"
    curve = read_learning_curve(plan)
    if rc != 0:
        study.fail(name, f"run_pretraining.py --do_eval exited with {rc} (log "
                   f"{plan['eval_log']}): " + " / ".join(last_lines(plan["eval_log"], 2)))
    elif not curve or curve[-1]["global_step"] != plan["steps"]:
        study.fail(name, f"{plan['learning_curve']} lacks step {plan['steps']}")
    else:
        study.finish(name, command=shell(cmd), checkpoints=len(curve),
                     wall_s=study.record(name).get("wall_s", 0.0) + wall)
        final = curve[-1]
        say(f"[{name}] done in {fmt_duration(wall)}: step {final['global_step']} " + ", ".join(
            f"{k} {v:.3f}" for k, v in final.items()
            if k in ("masked_lm_accuracy", "disc_auc", "disc_accuracy")))


# ---------------------------------------------------------------------------
# Stage: finetune
# ---------------------------------------------------------------------------

def main_metric(task: str) -> str:
    from electra_tf.finetuning.glue import GLUE_TASKS
    return GLUE_TASKS[task].METRIC


def finetuning_hparams(settings: dict) -> dict:
    ft = settings["finetune"]
    return {"max_seq_length": ft["max_seq_length"], "num_train_epochs": ft["num_train_epochs"],
            "learning_rate": ft["learning_rate"],
            "model_hparam_overrides": settings["model_hparam_overrides"],
            "num_trials": ft["num_trials"]}


def init_checkpoint(study: Study, arm: str):
    """What the fine-tuning of ``arm`` starts from: its pre-training run (None: random).

    The run directory <work_dir>/models/<arm> (the loader reads its newest complete
    checkpoint, here the final one).
    """
    if ARMS[arm] is None:
        return None
    return study.plan(arm)["model_dir"]


def stage_finetune(study: Study, arms: list) -> None:
    pairs = [(arm, task) for arm in arms for task in study.args.tasks]
    todo = [(a, t) for a, t in pairs if not study.done(f"finetune:{a}:{t}")]
    for arm, task in pairs:
        if (arm, task) not in todo:
            study.skip(f"finetune:{arm}:{task}")
    if not todo:
        return
    import keras
    from electra_tf.config import FinetuningConfig
    from electra_tf.training.finetune import FinetuneOptions, run_finetuning
    for index, (arm, task) in enumerate(todo):
        name = f"finetune:{arm}:{task}"
        if ARMS[arm] is not None and not os.path.exists(study.plan(arm)["done_marker"]):
            study.fail(name, f"pre-training of {arm} is not finished")
            continue
        prepare_glue(study, task, quiet=True)
        config = FinetuningConfig.from_preset("small", [task], finetuning_hparams(study.settings))
        base = os.path.join(study.work_dir, "finetune", arm, task)
        options = FinetuneOptions(
            data_dir=os.path.join(study.work_dir, "glue"), model_dir=os.path.join(base, "model"),
            results_dir=base, preprocessed_dir=os.path.join(study.work_dir, "finetune", "cache",
                                                            task),
            init_checkpoint=init_checkpoint(study, arm), seed=0,
            jit_compile=study.settings["jit_compile"],
            mixed_precision=study.settings["mixed_precision"])
        say(f"[{name}] fine-tuning {config.num_trials} seed(s) from "
            f"{options.init_checkpoint or 'a random initialisation'}"
            + _finetune_eta(study, todo, index))
        started = time.time()
        try:
            trials = run_finetuning(config, options)
        except Exception as e:  # one pair failing does not stop the others
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            study.fail(name, f"{type(e).__name__}: {first}")
            continue
        finally:
            keras.backend.clear_session()
        wall = time.time() - started
        metric = main_metric(task)
        values = [trial[task][metric] for trial in trials]
        study.finish(
            name, metric=metric, values=values, trials=[trial[task] for trial in trials],
            seeds=list(range(1, config.num_trials + 1)), wall_s=wall,
            init_checkpoint=options.init_checkpoint,
            config={k: getattr(config, k) for k in (
                "learning_rate", "num_train_epochs", "max_seq_length", "train_batch_size",
                "layerwise_lr_decay", "warmup_proportion", "weight_decay_rate")})
        if not study.args.keep_finetuned_models:
            for trial in range(1, config.num_trials + 1):
                shutil.rmtree(f"{options.model_dir}_{trial}", ignore_errors=True)
        say(f"[{name}] {metric} " + ", ".join(f"{v:.1f}" for v in values)
            + f" in {fmt_duration(wall)}")


def _finetune_eta(study: Study, todo: list, index: int) -> str:
    """An ETA from the wall times of finished pairs of the same task (any arm)."""
    walls = {}
    for name, rec in study.state["stages"].items():
        if name.startswith("finetune:") and rec.get("done") and rec.get("wall_s"):
            walls.setdefault(name.split(":")[2], []).append(rec["wall_s"])
    if not walls:
        return ""
    mean_all = statistics.mean(w for ws in walls.values() for w in ws)
    est = [statistics.mean(walls[t]) if t in walls else mean_all for _, t in todo[index:]]
    return f" (ETA this pair ~{fmt_duration(est[0])}, stage ~{fmt_duration(sum(est))})"


# ---------------------------------------------------------------------------
# Stage: report
# ---------------------------------------------------------------------------

def _stats(values: list) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "std": statistics.pstdev(values), "n": len(values), "values": values}


def canonical_command(args) -> str:
    parts = ["python", "benchmarks/quality_study.py", f"--scale={args.scale}"]
    for flag, value in args.given.items():
        parts.append(f"--{flag}={value}")
    if args.arms != ["electra", "mlm", "random"]:
        parts.append("--arms=" + ",".join(args.arms))
    if tuple(args.tasks) != TASKS:
        parts.append("--tasks=" + ",".join(args.tasks))
    for flag in ("max_steps_override", "train_batch_size_override", "num_eval_steps_override",
                 "max_train_override", "max_dev_override", "num_trials_override",
                 "mixed_precision"):
        if getattr(args, flag) is not None:
            parts.append(f"--{flag}={getattr(args, flag)}")
    if args.jit_compile is not None:
        parts.append("--jit_compile" if args.jit_compile else "--nojit_compile")
    return shlex.join(parts)


def build_report(study: Study) -> dict:
    settings, args = study.settings, study.args
    stages = study.state["stages"]
    arms = {}
    for arm in args.arms:
        entry = {"pretraining": None, "finetuning": {}, "glue_average": None}
        if ARMS[arm] is not None:
            plan = study.plan(arm)
            log = pretraining_log(plan["model_dir"])
            rec = stages.get(f"pretrain:{arm}", {})
            f = plan["flops_per_step"]
            curve = [{"step": r["step"], "flops": r["step"] * f, **curve_point(r)}
                     for r in log["curve"]]
            evals = [{**p, "flops": p["global_step"] * f} for p in read_learning_curve(plan)]
            sittings = rec.get("sittings", [])
            ours = bool(sittings) and not any("external_pid" in s for s in sittings)
            wall = rec.get("wall_s") if ours else None  # else: the log's training time
            entry["pretraining"] = {
                "finished": os.path.exists(plan["done_marker"]),
                "steps": plan["steps"], "warmup_steps": plan["warmup"],
                "flops_per_step": f, "flops": plan["flops"],
                "wall_s": wall if wall is not None else log["elapsed_s"],
                "wall_source": "quality_study sittings" if wall is not None else "log",
                "log_train_elapsed_s": log["elapsed_s"], "log_train_cpu_s": log["cpu_s"],
                "sittings_in_log": log["sittings"],
                "command": shell(command_line("run_pretraining.py", plan["args"])),
                "train_curve": curve, "eval_curve": evals,
                "final_eval": evals[-1] if evals and evals[-1]["global_step"] == plan["steps"]
                else None}
        per_seed = []
        for task in args.tasks:
            rec = stages.get(f"finetune:{arm}:{task}")
            if not rec or not rec.get("done"):
                continue
            entry["finetuning"][task] = {"metric": rec["metric"], **_stats(rec["values"]),
                                         "seeds": rec["seeds"], "all_metrics": rec["trials"],
                                         "wall_s": rec["wall_s"]}
            per_seed.append(rec["values"])
        if per_seed and len(per_seed) == len(args.tasks):
            n = min(len(v) for v in per_seed)
            averages = [statistics.mean(v[i] for v in per_seed) for i in range(n)]
            entry["glue_average"] = {"tasks": list(args.tasks), **_stats(averages)}
        arms[arm] = entry
    ft_config = next((rec["config"] for name, rec in sorted(stages.items())
                      if name.startswith("finetune:") and rec.get("config")), None)
    return {
        "study": "ELECTRA vs masked-LM pre-training at equal FLOPs (and random init)",
        "scale": args.scale, "command": canonical_command(args),
        "work_dir": _from_root(study.work_dir), "settings": settings,
        "finetuning_config": ft_config,
        "glue_data": {t: stages.get(f"data:glue:{t}", {}).get("examples") for t in args.tasks},
        "arms": arms,
    }


def write_report(study: Study) -> dict:
    report = build_report(study)
    out = study.args.results_dir
    os.makedirs(out, exist_ok=True)
    write_text_atomic(os.path.join(out, "quality_study.json"),
                      json.dumps(report, indent=1) + "\n")
    write_text_atomic(os.path.join(out, "quality_study.md"), format_markdown(report))
    png = write_plot(report, os.path.join(out, "quality_study.png"))
    say(f"[report] {os.path.join(out, 'quality_study.json')}, quality_study.md"
        + (", quality_study.png" if png else ""))
    return report


def _fmt_flops(x) -> str:
    from electra_tf.flops import format_flops
    return format_flops(x)


def format_markdown(report: dict) -> str:
    settings, arms = report["settings"], report["arms"]
    tasks = [t for t in TASKS if any(t in a["finetuning"] for a in arms.values())] + [
        t for a in arms.values() for t in a["finetuning"] if t not in TASKS]
    tasks = list(dict.fromkeys(tasks))
    lines = [f"# Quality study: ELECTRA vs masked LM at equal pre-training FLOPs "
             f"({report['scale']} scale)", "",
             f"Generated {time.strftime('%Y-%m-%d %H:%M')} by `{report['command']}` "
             "(re-running it resumes or, when finished, only rewrites this report).", ""]
    n_seeds = settings["finetune"]["num_trials"]
    lines += [f"## Fine-tuning: dev set, median [min-max] over {n_seeds} seeds", ""]
    metrics = {t: next(a["finetuning"][t]["metric"] for a in arms.values()
                       if t in a["finetuning"]) for t in tasks}
    lines.append("| arm | " + " | ".join(f"{t} {metrics[t]}" for t in tasks) + " | average |")
    lines.append("|---" * (len(tasks) + 2) + "|")

    def cell(s):
        return f"{s['median']:.1f} [{s['min']:.1f}-{s['max']:.1f}]" if s else "-"

    for arm, entry in arms.items():
        lines.append(f"| {arm} | " + " | ".join(cell(entry["finetuning"].get(t))
                                                 for t in tasks)
                     + f" | {cell(entry['glue_average'])} |")
    lines += ["", "The average is the mean of the tasks' main metrics per seed (GLUE-style); "
              "its median over seeds is shown.", "", "## Pre-training", "",
              "| arm | steps | FLOPs/step | FLOPs | wall time | final masked_lm_accuracy "
              "| final disc_auc | final disc_accuracy |", "|---" * 8 + "|"]
    for arm, entry in arms.items():
        p = entry["pretraining"]
        if p is None:
            lines.append(f"| {arm} | 0 | - | 0 | - | - | - | - |")
            continue
        final = p["final_eval"] or {}

        def metric(key):
            return f"{final[key]:.3f}" if key in final else "-"

        wall = fmt_duration(p["wall_s"]) + (" (log)" if p["wall_source"] == "log" else "")
        lines.append(f"| {arm} | {p['steps']}{'' if p['finished'] else ' (unfinished)'} | "
                     f"{_fmt_flops(p['flops_per_step'])} | {_fmt_flops(p['flops'])} | {wall} | "
                     f"{metric('masked_lm_accuracy')} | {metric('disc_auc')} | "
                     f"{metric('disc_accuracy')} |")
    lines += ["", "masked_lm_accuracy is the generator's for ELECTRA/Electric, the model's "
              "for MLM. FLOPs follow electra_tf.flops (the paper's convention); MLM gets "
              "round(T_ELECTRA x F_ELECTRA / F_MLM) steps. Wall time sums the sittings "
              "(\"(log)\": training time read from the log, start-up excluded).", ""]
    overrides = settings["model_hparam_overrides"]
    model = f"`{json.dumps(overrides)}`" if overrides else "none (the preset as is)"
    ft = settings["finetune"]
    cfg = report.get("finetuning_config") or {}
    lines += ["## Settings", "",
              f"- Model: ELECTRA `small` preset with model_hparam_overrides {model} "
              "(embedding size 128, generator 0.25 x the discriminator's width).",
              f"- Pre-training: batch {settings['train_batch_size']}, peak learning rate "
              + ", ".join(f"{a} {settings['learning_rate'][a]}" for a in arms
                          if arms[a]["pretraining"])
              + ", warm-up 10% of the steps, linear decay, "
              f"max_seq_length {settings['max_seq_length'] or 128}, checkpoints every 1/8 of "
              f"the run, eval {settings['num_eval_steps']} batches per checkpoint"
              + (f", flags {' '.join(settings['extra_flags'])}" if settings["extra_flags"]
                 else "") + ".",
              f"- Fine-tuning: FinetuningConfig.from_preset(\"small\", [task], "
              f"{json.dumps(finetuning_hparams(settings))})"
              + (f": learning rate {cfg.get('learning_rate')}, batch "
                 f"{cfg.get('train_batch_size')}, layer-wise decay "
                 f"{cfg.get('layerwise_lr_decay')}" if cfg else "")
              + "; the same for every arm. Seeds 1.." + str(ft["num_trials"]) + ".",
              "- GLUE data (train / dev examples): " + ", ".join(
                  f"{t} {c['train']} / {c['dev']}" for t, c in report["glue_data"].items() if c)
              + ".", "", "## Commands", "", "```", report["command"]]
    for arm, entry in arms.items():
        if entry["pretraining"]:
            lines.append(entry["pretraining"]["command"])
    lines += ["```", ""]
    return "\n".join(lines)


def write_plot(report: dict, path: str) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        say('[report] matplotlib is not installed: no plot (pip install -e ".[bench]")')
        return False
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    colors = {"electra": "tab:blue", "mlm": "tab:orange", "electric": "tab:green"}
    for arm, entry in report["arms"].items():
        p = entry["pretraining"]
        if not p:
            continue
        color = colors.get(arm)
        curve = p["train_curve"]
        x = [c["flops"] for c in curve]
        if any("mlm" in c for c in curve):
            left.plot(x, [c.get("mlm") for c in curve], color=color, label=f"{arm} mlm loss"
                      + (" (generator)" if arm != "mlm" else ""))
        if any("disc" in c for c in curve):
            left.plot(x, [c.get("disc") for c in curve], color=color, linestyle="--",
                      label=f"{arm} disc loss")
        evals = p["eval_curve"]
        ex = [e["flops"] for e in evals]
        if evals and "masked_lm_accuracy" in evals[0]:
            right.plot(ex, [e["masked_lm_accuracy"] for e in evals], color=color, marker="o",
                       label=f"{arm} masked_lm_accuracy")
        if evals and "disc_auc" in evals[0]:
            right.plot(ex, [e["disc_auc"] for e in evals], color=color, marker="s",
                       linestyle="--", label=f"{arm} disc_auc")
    xlabel = "pre-training FLOPs (step x FLOPs per step)"
    left.set(xlabel=xlabel, ylabel="training loss (from the logs)", yscale="log",
             title="training loss")
    right.set(xlabel=xlabel, ylabel="eval metric", title="eval (every checkpoint)")
    if not right.get_legend_handles_labels()[0]:
        right.text(0.5, 0.5, "no learning curve yet (stage eval)", ha="center",
                   transform=right.transAxes)
    for ax in (left, right):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle(f"ELECTRA vs MLM at equal FLOPs ({report['scale']} scale)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--work_dir", default=None, help="data, models and state (default "
                    "data/quality_study, relative to the repository root)")
    ap.add_argument("--scale", choices=sorted(SCALES), default="cpu")
    ap.add_argument("--results_dir", default=None, help="default benchmarks/results "
                    "(smoke: <work_dir>/results)")
    ap.add_argument("--arms", default="electra,mlm,random",
                    help=f"comma-separated, of {', '.join(ARMS)} (electric is optional)")
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--stages", default=",".join(STAGES), help=", ".join(STAGES))
    ap.add_argument("--parallel_pretraining", type=int, default=None,
                    help="pre-training runs at a time (default: smoke/cpu 2, gpu 1)")
    ap.add_argument("--corpus_dir", default=None, help="default ../shared/data/corpus "
                    "(smoke: the corpus bundled in the package)")
    ap.add_argument("--glue_dir", default=None, help="default ../shared/data/glue")
    ap.add_argument("--keep_finetuned_models", action="store_true",
                    help="keep the fine-tuned checkpoints (deleted once scored by default)")
    over = ap.add_argument_group("overrides of the scale's settings (tests)")
    over.add_argument("--max_steps_override", type=int, default=None,
                      help="ELECTRA pre-training steps (the others follow by FLOPs)")
    over.add_argument("--train_batch_size_override", type=int, default=None)
    over.add_argument("--num_eval_steps_override", type=int, default=None)
    over.add_argument("--max_train_override", type=int, default=None,
                      help="fine-tuning training examples per task")
    over.add_argument("--max_dev_override", type=int, default=None,
                      help="cut the dev sets (smoke: 128)")
    over.add_argument("--num_trials_override", type=int, default=None)
    over.add_argument("--jit_compile", dest="jit_compile", action="store_true", default=None)
    over.add_argument("--nojit_compile", dest="jit_compile", action="store_false")
    over.add_argument("--mixed_precision", choices=["bfloat16", "float16", "none"],
                      default=None, help="default: gpu bfloat16, otherwise none")
    args = ap.parse_args(argv)
    # Defaults are relative to the repository root, given paths to the current directory.
    given = {"work_dir": args.work_dir, "results_dir": args.results_dir}
    args.work_dir = (os.path.abspath(args.work_dir) if args.work_dir
                     else os.path.join(ROOT, "data", "quality_study"))
    if args.results_dir:
        args.results_dir = os.path.abspath(args.results_dir)
    else:
        args.results_dir = (os.path.join(args.work_dir, "results") if args.scale == "smoke"
                            else os.path.join(ROOT, "benchmarks", "results"))
    args.given = {k: _from_root(getattr(args, k)) for k, v in given.items() if v}
    for name in ("corpus_dir", "glue_dir"):
        if getattr(args, name):
            setattr(args, name, ",".join(os.path.abspath(p)
                                         for p in getattr(args, name).split(",")))
    args.arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    args.tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    args.stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    for kind, values, known in (("arm", args.arms, ARMS), ("stage", args.stages, STAGES),
                                ("task", args.tasks, TASKS)):
        unknown = [v for v in values if v not in known]
        if unknown:
            ap.error(f"unknown {kind} {', '.join(unknown)}; choose from {', '.join(known)}")
    return args


def check_inputs(study: Study) -> None:
    """Missing inputs are one line naming the path, before anything runs."""
    stages = study.args.stages
    out = os.path.join(study.work_dir, "pretrain_tfrecords")
    if "data" in stages and not study.done("data") and not _shards_complete(out):
        corpus = corpus_dir(study)
        if not glob.glob(corpus.split(",")[0]):
            raise StudyError(f"corpus not found: {corpus} (pass --corpus_dir)")
    if {"data", "finetune"} & set(stages):
        need = [t for t in study.args.tasks if not study.done(f"data:glue:{t}")]
        if "finetune" in stages and "data" not in stages:
            need = [t for t in need if any(not study.done(f"finetune:{a}:{t}")
                                           for a in study.args.arms)]
        for task in need:
            path = os.path.join(glue_dir(study), finetuning_eval.GLUE_DIRS[task])
            if not os.path.isdir(path):
                raise StudyError(f"GLUE data not found: {path} (pass --glue_dir)")


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.time()
    previous = signal.signal(signal.SIGTERM, _interrupt)  # kill <pid>: stop as Ctrl-C does
    try:
        with study_lock(args.work_dir):
            study = Study(args, build_settings(args))
            study.check_settings()
            check_inputs(study)
            pretrained = [a for a in args.arms if ARMS[a] is not None]
            say(f"quality study ({args.scale}) in {args.work_dir}: arms {', '.join(args.arms)}; "
                f"stages {', '.join(args.stages)}")
            for arm in pretrained:
                p = study.plan(arm)
                say(f"  {arm}: {p['steps']} steps x {_fmt_flops(p['flops_per_step'])} FLOPs = "
                    f"{_fmt_flops(p['flops'])}")
            try:
                if "data" in args.stages:
                    stage_data(study)
                if "pretrain" in args.stages:
                    stage_pretrain(study, pretrained)
                if "eval" in args.stages:
                    stage_eval(study, pretrained)
                if "finetune" in args.stages:
                    stage_finetune(study, args.arms)
                if "report" in args.stages:
                    write_report(study)
            finally:
                study.save()
    except StudyError as e:
        say(f"error: {e}")
        return 1
    except KeyboardInterrupt:
        say("interrupted; re-run the same command to continue")
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    say(f"quality study: {len(study.ran)} stage(s) ran, {len(study.skipped)} skipped, "
        f"{len(study.failed)} failed" + (f" ({', '.join(study.failed)})" if study.failed else "")
        + f"; {fmt_duration(time.time() - started)}")
    return 1 if study.failed else 0


if __name__ == "__main__":
    sys.exit(main())
