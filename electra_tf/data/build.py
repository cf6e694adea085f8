"""The build: input units to finished shards, in one or several processes.

:func:`build_pretraining_dataset` reads each input unit (:mod:`corpus`), tokenizes
its lines in batches (tokenization draws no random numbers, so batching does not
change the order of the packing's random draws), packs the ids into examples
(:mod:`packing`) and writes them into shards (:mod:`shards`); then it describes
the shards in ``pretrain_data.json`` (:mod:`shard_metadata`).
:func:`format_summary` turns its :class:`BuildStats` into the lines printed at
the end.

Deliberate difference from the original: the original uses the unseeded
global ``random`` module and one builder per process whose state (the
short-target length) carries from one input file into the next. Here every
input unit gets its own ``random.Random`` seeded from ``seed`` and the unit's
index in the sorted input list, and its builder starts with target length L.
The set of examples is therefore a function of (seed, inputs) alone and the
same for any number of processes; which shard an example lands in depends on
the number of processes (as in the original: job j owns shards i mod P == j).

A build that produces no example at all (every input empty, whitespace,
binary or unreadable) is an error and writes nothing. A file that fails while it
is read (a truncated .gz, an I/O error) is one warning line and the build goes on
with the text read until then; with ``strict`` it is an error. An output directory
holding a run, a checkpoint or a model is refused. Shards are renamed into place only
when every job has succeeded; worker processes stop, removing their temporary
files, when the builder process dies, even by SIGKILL. ``pretrain_data.json`` is
removed before old shards are replaced and written after the new ones are in
place, so it never describes shards that are not there.
"""

import dataclasses
import os
import random
import signal
import sys
import threading
import time
import traceback

from electra_tf import __version__
from electra_tf.data import corpus
from electra_tf.data import packing
from electra_tf.data import progress as progress_lib
from electra_tf.data import shard_metadata
from electra_tf.data import shards as shards_lib
from electra_tf.data.errors import PretrainingDataError
from electra_tf.io_utils import describe_contents

# Lines are tokenized in batches of about this many characters.
_TOKENIZE_BATCH_CHARS = 1 << 18
_TOKENIZE_BATCH_LINES = 4096


@dataclasses.dataclass(frozen=True)
class TokenizerSpec:
    """Arguments of ``electra_tf.tokenization.load_tokenizer``; calling the
    spec loads the tokenizer (in whichever process calls it)."""

    vocab_file: str = None
    spm_model: str = None
    do_lower_case: bool = True
    strip_accents: bool = True
    fast: bool = True

    def __call__(self):
        from electra_tf import tokenization  # pylint: disable=g-import-not-at-top

        try:
            return tokenization.load_tokenizer(
                vocab_file=self.vocab_file,
                spm_model=self.spm_model,
                do_lower_case=self.do_lower_case,
                strip_accents=self.strip_accents,
                fast=self.fast,
            )
        except (OSError, ValueError) as e:
            raise PretrainingDataError("cannot load tokenizer from '%s': %s" % (self._what(), e))

    def describe(self):
        """The vocab and casing of the tokens, as ``pretrain_data.json`` records them."""
        try:
            vocab = shard_metadata.vocab_fingerprint(self.vocab_file, self.spm_model)
        except OSError as e:
            raise PretrainingDataError("cannot load tokenizer from '%s': %s" % (self._what(), e))
        if self.spm_model:  # the model's own normaliser applies
            return {"vocab": vocab, "do_lower_case": None, "strip_accents": None}
        return {"vocab": vocab, "do_lower_case": self.do_lower_case,
                "strip_accents": self.do_lower_case and self.strip_accents}

    def _what(self):
        return self.spm_model or self.vocab_file or "the bundled vocab"


@dataclasses.dataclass
class BuildStats:
    """What a build read and wrote."""

    input_units: int = 0
    documents: int = 0
    lines: int = 0
    bad_utf8_lines: int = 0
    examples: int = 0
    tokens: int = 0  # wordpieces produced by the tokenizer
    example_tokens: int = 0  # non-padding tokens written, incl. [CLS]/[SEP]
    bytes_read: int = 0  # input files, compressed size
    text_bytes: int = 0  # decompressed text
    seconds: float = 0.0
    processes: int = 1
    empty_inputs: list = dataclasses.field(default_factory=list)
    skipped_inputs: list = dataclasses.field(default_factory=list)  # binary files
    unreadable_inputs: list = dataclasses.field(default_factory=list)  # failed while read
    truncated_lines: int = 0  # lines over corpus.MAX_LINE_BYTES
    files_written: list = dataclasses.field(default_factory=list)
    metadata_file: str = None  # pretrain_data.json
    output_bytes: int = 0
    stale_temp_files_removed: int = 0

    def merge(self, other):
        for field in (
            "input_units",
            "documents",
            "lines",
            "bad_utf8_lines",
            "examples",
            "tokens",
            "example_tokens",
            "bytes_read",
            "text_bytes",
            "truncated_lines",
        ):
            setattr(self, field, getattr(self, field) + getattr(other, field))
        self.empty_inputs.extend(other.empty_inputs)
        self.skipped_inputs.extend(other.skipped_inputs)
        self.unreadable_inputs.extend(other.unreadable_inputs)


@dataclasses.dataclass(frozen=True)
class _JobConfig:
    output_dir: str
    max_seq_length: int
    num_out_files: int
    seed: int
    blanks_separate_docs: bool
    input_format: str
    run_tag: str
    strict: bool = False  # a file that fails while read is an error, not a warning


def _process_unit(unit, cfg, tokenizer, writer, counters, stats, report):
    """Builds the examples of one input unit; returns True if it had no text.

    A unit skipped as binary goes to ``stats.skipped_inputs`` (not counted as
    empty); one that fails while it is read to ``stats.unreadable_inputs`` (its text
    read until then is used), or with ``cfg.strict`` the build stops;
    :func:`corpus.read_warnings` then says what was skipped or truncated.
    """
    counters.long_lines = []
    counters.skipped = None
    counters.unreadable = None
    cls_id = tokenizer.special_ids["cls"]
    sep_id = tokenizer.special_ids["sep"]
    rng = corpus.unit_rng(cfg.seed, unit.index)
    builder = packing.ExampleBuilder(cfg.max_seq_length, cls_id, sep_id, rng)
    state = {"doc_lines": 0, "unit_lines": 0}
    pending = []
    pending_chars = 0

    def flush():
        texts = [x for x in pending if x is not None]
        ids_iter = iter(tokenizer.encode_batch(texts) if texts else ())
        for item in pending:
            if item is None:
                if state["doc_lines"]:
                    stats.documents += 1
                    state["doc_lines"] = 0
                ids = None
            else:
                ids = next(ids_iter)
                stats.tokens += len(ids)
                state["doc_lines"] += 1
                state["unit_lines"] += 1
            example = builder.add_line(ids)
            if example is not None:
                writer.write(example)
                stats.examples += 1
                stats.example_tokens += sum(example.input_mask)
        pending.clear()
        report()

    items = unit.iter_items(cfg.input_format, cfg.blanks_separate_docs, counters, cfg.seed)
    try:
        for item in items:
            pending.append(item)
            if item is not None:
                pending_chars += len(item)
                if pending_chars >= _TOKENIZE_BATCH_CHARS or len(pending) >= _TOKENIZE_BATCH_LINES:
                    flush()
                    pending_chars = 0
    except corpus.UnreadableInputError as e:
        if cfg.strict:
            raise PretrainingDataError(
                "%s: remove or repair it, or run without --strict to skip what cannot be read"
                % e) from e
        lines_read = state["unit_lines"] + sum(1 for item in pending if item is not None)
        counters.unreadable = (e.detail, lines_read)
    pending.append(None)  # the end of an input always ends a document
    flush()
    counters.truncated_lines += len(counters.long_lines)
    if counters.unreadable is not None:
        stats.unreadable_inputs.append(unit.name)
        return False
    if counters.skipped is not None:
        stats.skipped_inputs.append(unit.name)
        return False
    if state["unit_lines"] == 0:
        stats.empty_inputs.append(unit.name)
        return True
    return False


def _run_job(job_id, num_jobs, units, cfg, tokenizer_factory, message):
    """Processes ``units`` into the shards of job ``job_id``.

    ``message(kind, payload)`` receives ("progress", bytes_read_delta),
    ("warning", text). Returns (BuildStats, {temp: final}).
    """
    tokenizer = tokenizer_factory()
    writer = shards_lib.ShardWriter(
        cfg.output_dir, cfg.num_out_files, job_id, num_jobs, cfg.run_tag
    )
    paths = writer.paths
    stats = BuildStats()
    counters = corpus.ReadCounters()
    last = {"bytes": 0, "time": 0.0}

    def report(force=False):
        now = time.monotonic()
        if force or now - last["time"] > 0.1:
            delta = counters.bytes_read - last["bytes"]
            if delta:
                message("progress", delta)
            last["bytes"] = counters.bytes_read
            last["time"] = now

    try:
        for unit in units:
            empty = _process_unit(unit, cfg, tokenizer, writer, counters, stats, report)
            for warning in corpus.read_warnings(unit, counters):
                message("warning", warning)
            if empty and not corpus.is_empty_file(unit):
                message("warning", "input has no text: %s" % unit.name)
            report(force=True)
            stats.input_units += 1
        writer.close()
    except BaseException:
        writer.close()
        shards_lib.remove_quietly(paths)
        raise
    stats.lines = counters.lines
    stats.bad_utf8_lines = counters.bad_utf8_lines
    stats.bytes_read = counters.bytes_read
    stats.text_bytes = counters.text_bytes
    stats.truncated_lines = counters.truncated_lines
    return stats, paths


class _Terminated(BaseException):
    """A worker was told to stop (SIGTERM), or its builder process is gone.

    A BaseException, so that no ``except Exception`` swallows it; the job's
    temporary shards are removed on the way out.
    """


_PR_SET_PDEATHSIG = 1
_PARENT_POLL_SECONDS = 1.0
_PARENT_GONE_GRACE_SECONDS = 10.0


def _stop_with_parent(parent_pid):
    """Makes this worker stop when the builder process ``parent_pid`` dies.

    SIGTERM raises :class:`_Terminated` (the job then removes its temporary
    shards). On Linux the kernel sends SIGTERM when the parent dies, even by
    SIGKILL (prctl PR_SET_PDEATHSIG); everywhere a watchdog thread polls
    ``os.getppid()`` and sends it too, and ends the process if the main thread
    does not stop within a grace period (e.g. inside a long native call).
    """

    def on_sigterm(signum, frame):
        del signum, frame
        raise _Terminated()

    signal.signal(signal.SIGTERM, on_sigterm)
    if sys.platform.startswith("linux"):
        try:
            import ctypes  # pylint: disable=g-import-not-at-top

            ctypes.CDLL(None, use_errno=True).prctl(
                _PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0
            )
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # died before prctl took effect
        raise _Terminated()

    def watch():
        while os.getppid() == parent_pid:
            time.sleep(_PARENT_POLL_SECONDS)
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        except OSError:
            pass
        time.sleep(_PARENT_GONE_GRACE_SECONDS)
        os._exit(1)  # pylint: disable=protected-access

    threading.Thread(target=watch, name="builder-watchdog", daemon=True).start()


def _worker_main(job_id, num_jobs, units, cfg, tokenizer_factory, queue, parent_pid=None):
    """Entry point of a worker process: reports through ``queue``.

    With ``parent_pid``, the worker stops (removing its temporary shards) when
    that process dies; it also checks between batches of lines.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    def message(kind, payload):
        if parent_pid is not None and os.getppid() != parent_pid:
            raise _Terminated()
        queue.put((kind, payload))

    try:
        if parent_pid is not None:
            _stop_with_parent(parent_pid)
        stats, paths = _run_job(job_id, num_jobs, units, cfg, tokenizer_factory, message)
        queue.put(("done", (job_id, stats, paths)))
    except PretrainingDataError as e:
        queue.put(("user_error", str(e)))
    except (KeyboardInterrupt, _Terminated):
        # Nobody may read the queue any more: do not wait for its buffer at exit.
        queue.cancel_join_thread()
    except BaseException:  # pylint: disable=broad-except
        queue.put(("crash", "job %d failed:\n%s" % (job_id, traceback.format_exc())))


# Entries of a run, a checkpoint or a model: a directory holding one is no place for shards
# (they would be mixed into it; the builder's --overwrite must never reach it).
_NOT_DATA = ("pretraining_config.json", "run_record.json", "checkpoint", "saved_model.pb",
             "model.safetensors", "pytorch_model.bin", "config.json")


def _prepare_output_dir(output_dir, overwrite):
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise PretrainingDataError("output path '%s' exists and is not a directory" % output_dir)
    if os.path.isdir(output_dir) and any(
            name in _NOT_DATA or name.endswith(".index") for name in os.listdir(output_dir)):
        raise PretrainingDataError(
            "--output_dir %s holds %s, which the builder did not write: it writes shards "
            "only beside other data, never into a run, a checkpoint or a model, --overwrite "
            "or not; choose another --output_dir" % (output_dir, describe_contents(output_dir)))
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as e:
        raise PretrainingDataError(
            "cannot create output directory '%s': %s" % (output_dir, e.strerror or e)
        )
    probe = os.path.join(output_dir, ".write-test-%d" % os.getpid())
    try:
        with open(probe, "wb") as f:
            f.write(b"x")
        os.remove(probe)
    except OSError as e:
        raise PretrainingDataError(
            "output directory '%s' is not writable: %s" % (output_dir, e.strerror or e)
        )
    shards = shards_lib.existing_shards(output_dir)
    if shards and not overwrite:
        raise PretrainingDataError(
            "output directory '%s' already holds %d %s-* file(s); pass "
            "--overwrite to replace them, or choose another --output_dir"
            % (output_dir, len(shards), shards_lib.SHARD_PREFIX)
        )
    return shards


def _job_units(units, job_id, num_jobs, seed):
    mine = [u for u in units if u.index % num_jobs == job_id]
    random.Random("electra-tf/order/%d/%d/%d" % (seed, num_jobs, job_id)).shuffle(mine)
    return mine


def build_pretraining_dataset(
    units,
    output_dir,
    tokenizer_factory,
    max_seq_length=128,
    num_out_files=1000,
    num_processes=1,
    seed=0,
    blanks_separate_docs=True,
    input_format="auto",
    overwrite=False,
    show_progress=True,
    stream=None,
    source=None,
    strict=False,
):
    """Builds pre-training TFRecord shards from input units.

    Args:
      units: input units from :func:`corpus.find_corpus_files`,
        :func:`corpus.default_corpus_files` or :func:`corpus.tfds_corpus_units`.
      output_dir: where ``pretrain_data.tfrecord-<i>-of-<n>`` and their
        ``pretrain_data.json`` are written.
      tokenizer_factory: a picklable callable returning a tokenizer with
        ``encode_batch`` and ``special_ids`` (e.g. a :class:`TokenizerSpec`); its
        ``describe()``, if it has one, gives the vocab and casing recorded in
        ``pretrain_data.json`` (else they are null).
      max_seq_length: L.
      num_out_files: number of shards.
      num_processes: P; above 1 the work runs in P spawned processes (capped
        at the number of input units and at ``num_out_files``).
      seed: seeds the per-unit RNGs (see the module docstring).
      blanks_separate_docs: in "text" inputs, a blank line ends a document.
      input_format: one of corpus.INPUT_FORMATS.
      overwrite: replace existing shards in ``output_dir`` (only the
        ``pretrain_data.tfrecord-*`` files and ``pretrain_data.json``; nothing
        else is touched) and remove
        every temporary shard there, also of builds still running.
      show_progress: print a progress bar with ETA to ``stream``.
      stream: where progress and warnings go (default stderr).
      source: names the input in messages (default: the input file, or "the
        input").
      strict: a file that fails while it is read (truncated or corrupt compression,
        permission, I/O) stops the build with an error naming it, instead of one
        warning line and the text read until then.

    Returns:
      BuildStats.

    Raises:
      PretrainingDataError: for user errors (see the messages).
    """
    stream = stream if stream is not None else sys.stderr
    if input_format not in corpus.INPUT_FORMATS:
        raise PretrainingDataError(
            "--input_format must be one of %s, got '%s'"
            % ("|".join(corpus.INPUT_FORMATS), input_format)
        )
    if max_seq_length < packing.MIN_TARGET_LENGTH:
        raise PretrainingDataError(
            "--max_seq_length must be at least %d, got %d"
            % (packing.MIN_TARGET_LENGTH, max_seq_length)
        )
    if num_out_files < 1:
        raise PretrainingDataError("--num_out_files must be positive, got %d" % num_out_files)
    if num_processes < 1:
        raise PretrainingDataError("--num_processes must be positive, got %d" % num_processes)
    units = list(units)
    if not units:
        raise PretrainingDataError("no input units")
    described_source = source if source is not None else _describe_units(units)
    if source is None:
        source = units[0].name if len(units) == 1 else "the input"
    if all(corpus.is_empty_file(u) for u in units):
        raise PretrainingDataError(
            "%s produced no examples (%s, all empty or whitespace): nothing written"
            % (source, _count(len(units), "file"))
        )
    describe_tokens = getattr(tokenizer_factory, "describe", None)
    tokens = describe_tokens() if describe_tokens else {
        "vocab": None, "do_lower_case": None, "strip_accents": None}
    created = not os.path.exists(output_dir)
    old_shards = _prepare_output_dir(output_dir, overwrite)
    if not old_shards:  # a description left without its shards describes nothing here
        shard_metadata.remove_metadata(output_dir)
    removed, kept = shards_lib.remove_stale_temp_files(output_dir, overwrite)
    if removed:
        print(
            "removed %s of an earlier build that did not finish from %s"
            % (_count(len(removed), "stale temporary shard"), output_dir),
            file=stream,
        )
    if kept:
        print(
            "warning: %s in %s belong to a build that is still running (pid %s); "
            "left alone (--overwrite removes them)"
            % (_count(len(kept), "temporary shard"), output_dir, shards_lib.temp_file_pid(kept[0])),
            file=stream,
        )
    num_jobs = max(1, min(num_processes, len(units), num_out_files))
    cfg = _JobConfig(
        output_dir=output_dir,
        max_seq_length=max_seq_length,
        num_out_files=num_out_files,
        seed=seed,
        blanks_separate_docs=blanks_separate_docs,
        input_format=input_format,
        run_tag="%d-%d" % (os.getpid(), int(time.time() * 1e3)),
        strict=strict,
    )
    for unit in units:
        if corpus.is_empty_file(unit):
            print("warning: empty input file: %s" % unit.name, file=stream)

    bar = progress_lib.Progress(
        total=sum(u.size for u in units),
        unit="B",
        desc="building",
        stream=stream,
        enabled=show_progress,
    )
    start = time.monotonic()
    temp_paths = {}
    stats = BuildStats(processes=num_jobs)

    def on_message(kind, payload):
        if kind == "progress":
            bar.update(payload)
        elif kind == "warning":
            bar.write("warning: %s" % payload)

    try:
        if num_jobs == 1:
            job_stats, paths = _run_job(
                0, 1, _job_units(units, 0, 1, seed), cfg, tokenizer_factory, on_message
            )
            temp_paths.update(paths)
            stats.merge(job_stats)
        else:
            _run_processes(units, num_jobs, cfg, tokenizer_factory, on_message, stats, temp_paths)
    except BaseException:
        bar.close()
        shards_lib.remove_quietly(temp_paths)
        shards_lib.remove_quietly(shards_lib.own_temp_files(output_dir, cfg.run_tag))
        raise
    bar.close()
    stats.stale_temp_files_removed = len(removed)
    if stats.examples == 0:
        shards_lib.remove_quietly(temp_paths)
        shards_lib.remove_quietly(shards_lib.own_temp_files(output_dir, cfg.run_tag))
        if created:
            _remove_if_empty(output_dir)
        why = _no_examples_why(units, stats)
        raise PretrainingDataError("%s produced no examples (%s): nothing written" % (source, why))
    # Removed before the old shards go, written once the new ones are all in place.
    shard_metadata.remove_metadata(output_dir)
    stats.files_written = shards_lib.finalize_shards(output_dir, temp_paths, old_shards)
    stats.output_bytes = sum(os.path.getsize(p) for p in stats.files_written)
    stats.metadata_file = shard_metadata.write_metadata(output_dir, {
        "builder_version": shard_metadata.BUILDER_VERSION,
        "electra_tf_version": __version__,
        "max_seq_length": max_seq_length,
        **tokens,
        "num_files": len(stats.files_written),
        "num_examples": stats.examples,
        "corpus": described_source,
        "input_format": input_format,
        "blanks_separate_docs": blanks_separate_docs,
        "seed": seed,
    })
    stats.seconds = time.monotonic() - start
    return stats


def _remove_if_empty(directory):
    """Removes a directory this build created, if it is still empty (nothing written)."""
    try:
        os.rmdir(directory)
    except OSError:
        pass


def _describe_units(units):
    """The input of a build in a few words, for ``pretrain_data.json``."""
    if len(units) == 1:
        return units[0].name
    if all(isinstance(u, corpus.CorpusFile) for u in units):
        return os.path.commonpath([u.path for u in units])
    return "%s and %d more" % (units[0].name, len(units) - 1)


def _count(n, noun):
    return "%d %s%s" % (n, noun, "" if n == 1 else "s")


def _no_examples_why(units, stats):
    """Why a build made no example, e.g. "3 files, all empty or whitespace"."""
    kind = "file" if all(isinstance(u, corpus.CorpusFile) for u in units) else "input"
    total = len(units)
    skipped = len(stats.skipped_inputs)
    empty = len(stats.empty_inputs)
    unreadable = len(stats.unreadable_inputs)
    if empty == total:
        return "%s, all empty or whitespace" % _count(total, kind)
    if skipped == total:
        return "%s, all skipped as binary" % _count(total, kind)
    if unreadable == total:
        return "%s, none readable (see the warnings)" % _count(total, kind)
    parts = []
    if skipped:
        parts.append("%d skipped as binary" % skipped)
    if empty:
        parts.append("%d empty or whitespace" % empty)
    if unreadable:
        parts.append("%d unreadable" % unreadable)
    rest = total - skipped - empty - unreadable
    if rest:
        parts.append("%d whose text gave no wordpieces (wrong vocab?)" % rest)
    return "%s: %s" % (_count(total, kind), ", ".join(parts))


def _stop(procs, timeout):
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.join(timeout)


def _run_processes(units, num_jobs, cfg, tokenizer_factory, on_message, stats, temp_paths):
    import multiprocessing  # pylint: disable=g-import-not-at-top
    import queue as queue_lib  # pylint: disable=g-import-not-at-top

    # "spawn": TensorFlow (and its thread pools) do not survive fork() safely.
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = []
    for job_id in range(num_jobs):
        proc = ctx.Process(
            target=_worker_main,
            name="build-pretraining-data-%d" % job_id,
            args=(
                job_id,
                num_jobs,
                _job_units(units, job_id, num_jobs, cfg.seed),
                cfg,
                tokenizer_factory,
                queue,
                os.getpid(),
            ),
            daemon=True,
        )
        proc.start()
        procs.append(proc)
    done = set()
    failure = None
    try:
        while len(done) < num_jobs and failure is None:
            try:
                kind, payload = queue.get(timeout=0.5)
            except queue_lib.Empty:
                crashed = [
                    j for j, p in enumerate(procs) if j not in done and p.exitcode not in (None, 0)
                ]
                if crashed:
                    try:  # a last message (its error) may still be on its way
                        kind, payload = queue.get(timeout=2.0)
                    except queue_lib.Empty:
                        failure = RuntimeError(
                            "worker %d died with exit code %s"
                            % (crashed[0], procs[crashed[0]].exitcode)
                        )
                        break
                else:
                    continue
            if kind == "done":
                job_id, job_stats, paths = payload
                done.add(job_id)
                stats.merge(job_stats)
                temp_paths.update(paths)
            elif kind == "user_error":
                failure = PretrainingDataError(payload)
            elif kind == "crash":
                failure = RuntimeError(payload)
            else:
                on_message(kind, payload)
    except BaseException:
        _stop(procs, 10)
        raise
    if failure is not None:
        _stop(procs, 5)
        raise failure
    for proc in procs:
        proc.join()


def format_summary(stats, output_dir=None):
    """Human-readable summary lines of a finished build."""
    seconds = max(stats.seconds, 1e-9)
    fmt_b = progress_lib.format_bytes
    lines = [
        "documents: {:,}   examples: {:,}   tokens: {:,} ({:,} in examples, "
        "incl. [CLS]/[SEP])".format(
            stats.documents, stats.examples, stats.tokens, stats.example_tokens
        ),
        "input: {} unit(s), {:,} lines, {} on disk, {} of text; lines with "
        "invalid UTF-8: {:,}".format(
            stats.input_units,
            stats.lines,
            fmt_b(stats.bytes_read),
            fmt_b(stats.text_bytes),
            stats.bad_utf8_lines,
        ),
        "throughput: {:.2f} MB/s of text, {:,.0f} tokens/s in {} with {} process(es)".format(
            stats.text_bytes / 1e6 / seconds,
            stats.tokens / seconds,
            progress_lib.format_duration(stats.seconds),
            stats.processes,
        ),
    ]
    files = stats.files_written
    if files:
        where = output_dir or os.path.dirname(files[0])
        lines.append(
            "wrote {} file(s), {}, to {} ({} .. {})".format(
                len(files),
                fmt_b(stats.output_bytes),
                where,
                os.path.basename(files[0]),
                os.path.basename(files[-1]),
            )
        )
    for label, names in (
        ("inputs without text", stats.empty_inputs),
        ("inputs skipped as binary", stats.skipped_inputs),
        ("inputs that could not be read to their end", stats.unreadable_inputs),
    ):
        if names:
            lines.append(
                "%s: %d (%s%s)"
                % (label, len(names), ", ".join(names[:3]), ", ..." if len(names) > 3 else "")
            )
    if stats.truncated_lines:
        limit = fmt_b(corpus.MAX_LINE_BYTES)
        lines.append("lines over %s truncated: %d" % (limit, stats.truncated_lines))
    return lines


def build_embedded_dataset(
    output_dir, max_seq_length=128, vocab_file=None, seed=0, show_progress=True, stream=None
):
    """Builds TFRecords from the corpus bundled in the package (the quick-start data)."""
    return build_pretraining_dataset(
        corpus.default_corpus_files(),
        output_dir,
        TokenizerSpec(vocab_file=vocab_file),
        max_seq_length=max_seq_length,
        num_out_files=corpus.EMBEDDED_CORPUS_NUM_OUT_FILES,
        seed=seed,
        show_progress=show_progress,
        stream=stream,
        source="embedded corpus %s" % corpus.EMBEDDED_CORPUS_DIR,
    )
