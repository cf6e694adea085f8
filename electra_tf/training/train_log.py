"""The machine-readable training log of a pre-training run: ``<model_dir>/train_log.jsonl``.

The pre-training driver (``training/pretrain.py``) appends one JSON object per line, and
flushes it, for every logged step (``--log_every_steps``), so that a killed run loses at
most the line it was writing; a resumed run appends to the same file. Every record has
``event`` and ``time`` (Unix seconds); by ``event``:

``start`` (each invocation, after the restore)
    ``version`` (of this format, 1), ``step`` (where this sitting starts), ``total_steps``,
    ``stop_step`` (``--stop_at_step`` or ``total_steps``), ``resumed_from`` (``ckpt-N`` or
    null), ``init_checkpoint``, ``recipe`` (the run's kind: ``electra``, ``mlm``, ...),
    ``config`` (the whole ``PretrainingConfig``), ``run_record`` (the identity of
    ``run_record.json``: vocabulary hash, shapes, objective), ``runtime`` (batch,
    replicas, strategy, precision and why, XLA, seed, cadence, records), ``pid``, ``host``.
``step`` (every logged step)
    ``step``, ``total_steps``, ``stats`` (every training statistic of the step, by the
    recipe's names: ``total_loss``, ``mlm_loss``, ``masked_lm_accuracy`` and, with a
    discriminator, ``disc_loss``, ``disc_accuracy``, ``sampled_masked_lm_accuracy``),
    ``learning_rate``, ``steps_per_s``, ``examples_per_s`` and ``step_time_s`` (over the
    steps since the previous record), ``elapsed_s`` and ``cpu_s`` (wall and process CPU
    seconds, all threads, since this sitting began training).
``end`` (when the invocation stops: finished, ``--stop_at_step``, a signal, an error)
    ``step``, ``total_steps``, ``reason`` (``finished``, ``stop_at_step``, ``signal N``,
    ``interrupted``, ``error``), ``elapsed_s``, ``cpu_s``, and ``error`` (its first line).

A run killed outright (SIGKILL, a crash) writes no ``end`` record and may leave a torn
last line: the reader skips lines that are not a JSON object, and the writer of the next
sitting starts on a fresh line. :func:`read_train_log` reads the records;
:func:`sittings`, :func:`training_curve` and :func:`training_time` summarise them. This
module does not import TensorFlow (the readers are used by light tools).
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from typing import Callable, List, Optional, Tuple

TRAIN_LOG = "train_log.jsonl"
FORMAT_VERSION = 1


def train_log_path(model_dir: str) -> str:
    """``<model_dir>/train_log.jsonl``."""
    return os.path.join(model_dir, TRAIN_LOG)


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------

def _finite(value):
    """JSON has no NaN or infinity: such a number is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


class TrainLogWriter:
    """Appends records to ``<model_dir>/train_log.jsonl``, one flushed line each.

    ``enabled=False`` (a worker that is not the chief) writes nothing. A failed write (a
    full disk) is reported once through ``warn`` and turns the log off: training goes on.
    """

    def __init__(self, model_dir: str, enabled: bool = True,
                 warn: Optional[Callable[[str], None]] = None):
        self.path = train_log_path(model_dir)
        self._warn = warn
        self._file = None
        if enabled:
            try:
                self._file = self._open()
            except Exception as e:  # OSError, or tf.errors.OpError on a remote file system
                self._fail(e)

    def _open(self):
        if "://" in self.path:  # e.g. gs://: TensorFlow's file systems (no torn-line repair)
            import tensorflow as tf
            return tf.io.gfile.GFile(self.path, "a")
        torn = False
        if os.path.exists(self.path) and os.path.getsize(self.path) > 0:
            with open(self.path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                torn = f.read(1) != b"\n"
        handle = open(self.path, "a", encoding="utf-8")
        if torn:  # a killed sitting's last line: keep it apart from the first record of ours
            handle.write("\n")
            handle.flush()
        return handle

    def _fail(self, error: Exception) -> None:
        self.close()
        if self._warn is not None:
            text = str(error).strip().splitlines()
            self._warn(f"warning: cannot write {self.path} ({text[0] if text else error!r}); "
                       "training goes on without the JSON training log")

    @property
    def enabled(self) -> bool:
        return self._file is not None

    def write(self, event: str, **fields) -> None:
        """Appends ``{"event": event, "time": now, **fields}`` and flushes it."""
        if self._file is None:
            return
        record = {"event": event, "time": round(time.time(), 3), **_finite(fields)}
        try:
            self._file.write(json.dumps(record, sort_keys=False) + "\n")
            self._file.flush()
        except Exception as e:  # OSError, tf.errors.OpError
            self._fail(e)

    def start(self, *, step: int, total_steps: int, stop_step: int,
              resumed_from: Optional[str], init_checkpoint: Optional[str], recipe: str,
              config: dict, run_record: dict, runtime: dict) -> None:
        """The record of a sitting's start (see the module docstring)."""
        self.write("start", version=FORMAT_VERSION, step=step, total_steps=total_steps,
                   stop_step=stop_step, resumed_from=resumed_from,
                   init_checkpoint=init_checkpoint, recipe=recipe, config=config,
                   run_record=run_record, runtime=runtime, pid=os.getpid(),
                   host=socket.gethostname())

    def step(self, *, step: int, total_steps: int, stats: dict, learning_rate: float,
             window_steps: int, window_s: float, batch_size: int, elapsed_s: float,
             cpu_s: float) -> None:
        """The record of a logged step; the speed is that of the ``window_steps`` steps
        taken in the ``window_s`` seconds since the previous record."""
        rate = window_steps / window_s if window_s > 0 else float("nan")
        self.write("step", step=step, total_steps=total_steps,
                   stats={k: float(v) for k, v in stats.items()},
                   learning_rate=float(learning_rate), steps_per_s=rate,
                   examples_per_s=rate * batch_size,
                   step_time_s=window_s / window_steps if window_steps else None,
                   elapsed_s=round(elapsed_s, 3), cpu_s=round(cpu_s, 3))

    def end(self, *, step: int, total_steps: int, reason: str, elapsed_s: float,
            cpu_s: float, error: Optional[str] = None) -> None:
        """The record of a sitting's end (not written when the process is killed)."""
        fields = {"error": error} if error else {}
        self.write("end", step=step, total_steps=total_steps, reason=reason,
                   elapsed_s=round(elapsed_s, 3), cpu_s=round(cpu_s, 3), **fields)

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except Exception:  # closing after a failed write: nothing more to save
                pass
            self._file = None


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------

def _parse(line: str) -> Optional[dict]:
    try:
        record = json.loads(line)
    except ValueError:  # a torn line of a killed run
        return None
    return record if isinstance(record, dict) and "event" in record else None


def _read_bytes(path: str, offset: int) -> Tuple[bytes, int]:
    """The bytes of ``path`` from ``offset`` (from 0 when the file is shorter: a new file in
    place of the one followed), and the offset they start at."""
    if "://" in path:
        import tensorflow as tf
        if not tf.io.gfile.exists(path):
            return b"", 0
        with tf.io.gfile.GFile(path, "rb") as f:
            data = f.read()
        offset = offset if offset <= len(data) else 0
        return data[offset:], offset
    if not os.path.exists(path):
        return b"", 0
    with open(path, "rb") as f:
        if offset > os.path.getsize(path):
            offset = 0
        f.seek(offset)
        return f.read(), offset


def read_train_log(model_dir: str) -> List[dict]:
    """Every record of ``<model_dir>/train_log.jsonl``, in the order written; ``[]`` when
    the run wrote none. Lines that are not a JSON record (the torn last line of a killed
    run) are skipped."""
    data, _ = _read_bytes(train_log_path(model_dir), 0)
    return [r for r in map(_parse, data.decode("utf-8", errors="replace").splitlines())
            if r is not None]


def follow_train_log(model_dir: str, offset: int = 0) -> Tuple[List[dict], int]:
    """The records of the complete lines written since byte ``offset``, and the offset
    to pass next time: for following a run while it trains (a line still being written
    waits for the next call). An offset past the end (the file was replaced) reads the
    file from its start."""
    data, offset = _read_bytes(train_log_path(model_dir), offset)
    end = data.rfind(b"\n") + 1
    lines = data[:end].decode("utf-8", errors="replace").splitlines()
    return [r for r in map(_parse, lines) if r is not None], offset + end


def sittings(records: List[dict]) -> List[dict]:
    """One entry per invocation of the driver: ``{"start": its start record, "steps":
    [its step records], "end": its end record or None (killed)}``. Records before the
    first start record (none, written by this driver) make a sitting of their own."""
    result: List[dict] = []
    for record in records:
        event = record.get("event")
        if event == "start" or not result:
            result.append({"start": None, "steps": [], "end": None})
        if event == "start":
            result[-1]["start"] = record
        elif event == "step":
            result[-1]["steps"].append(record)
        elif event == "end":
            result[-1]["end"] = record
    return result


def training_curve(records: List[dict]) -> List[dict]:
    """The step records by step. A step logged again by a later sitting (one resumed from
    a checkpoint older than the step) takes the later record, as the weights did."""
    by_step = {}
    for record in records:
        if record.get("event") == "step":
            by_step[record["step"]] = record
    return [by_step[step] for step in sorted(by_step)]


def training_time(records: List[dict]) -> dict:
    """``{"wall_s", "cpu_s"}``: training time summed over the sittings (start-up excluded),
    each sitting's from its end record or, when it was killed, its last step record;
    None when no sitting logged a step or an end."""
    wall = cpu = None
    for sitting in sittings(records):
        last = sitting["end"] or (sitting["steps"][-1] if sitting["steps"] else None)
        if last is None:
            continue
        if last.get("elapsed_s") is not None:
            wall = (wall or 0.0) + last["elapsed_s"]
        if last.get("cpu_s") is not None:
            cpu = (cpu or 0.0) + last["cpu_s"]
    return {"wall_s": wall, "cpu_s": cpu}
