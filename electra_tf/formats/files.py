"""The files of ``tf.train`` checkpoints: finding, opening and writing them safely.

What every checkpoint format on ``tf.train`` files shares (TF1-name checkpoints, the
keras format, a pre-training run's ``ckpt-N``), below the names they hold
(:mod:`electra_tf.checkpoints`):

* a path (directory, prefix or ``.index``) resolved to one complete checkpoint prefix:
  :func:`resolve_checkpoint`, :func:`latest_complete_checkpoint`, :func:`run_checkpoints`;
  :func:`open_checkpoint` opens it once, or raises one CheckpointError;
* :func:`write_checkpoint_files`: tensors written under a temporary prefix and renamed into
  place, the ``.index`` last, so that an interrupted write never leaves a checkpoint that
  looks valid; :func:`write_state_file` (the ``checkpoint`` file).
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from typing import Callable, Mapping, Optional, Sequence

import tensorflow as tf

from electra_tf.checkpoints import CheckpointError
from electra_tf.io_utils import first_line, write_text_atomic

# The key of an object-based (tf.train.Checkpoint) checkpoint's object graph: present in a
# training run's ckpt-N and in keras-format directories, absent from TF1-name checkpoints.
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"

_STEP = re.compile(r"-(\d+)$")
_TRAINING_INDEX = re.compile(r"^(ckpt-\d+)\.index$")
_SHARD = re.compile(r"\.data-(\d+)-of-(\d+)$")
LOOKED_FOR = ("looked for a 'checkpoint' state file, ckpt-N.index (a training run) or "
              "<name>.index (a TF1 export)")


def is_complete_checkpoint(prefix: str) -> bool:
    """True if ``prefix.index`` and every ``prefix.data-XXXXX-of-YYYYY`` shard exist and the
    index can be read."""
    directory, base = os.path.split(os.fspath(prefix))
    try:
        names = set(tf.io.gfile.listdir(directory or "."))
    except tf.errors.OpError:
        return False
    if base + ".index" not in names:
        return False
    totals = {int(m.group(2)) for name in names
              if (m := _SHARD.search(name)) and name[: m.start()] == base}
    if len(totals) != 1:
        return False
    total = totals.pop()
    if any(f"{base}.data-{i:05d}-of-{total:05d}" not in names for i in range(total)):
        return False
    try:
        _reader(prefix)
    except (tf.errors.OpError, ValueError):
        return False
    return True


def run_checkpoints(model_dir: str, complete_only: bool = True) -> list:
    """``[(step, prefix)]`` of the ``ckpt-N`` of a (pre-training) run directory, oldest first.

    Found by their ``.index`` files, not the state file (which may name deleted ones);
    ``complete_only`` keeps those whose index and data shards are all there
    (:func:`is_complete_checkpoint`).
    """
    model_dir = os.fspath(model_dir)
    try:
        names = tf.io.gfile.listdir(model_dir)
    except tf.errors.OpError:  # not a directory (or gone)
        return []
    found = []
    for name in names:
        m = _TRAINING_INDEX.match(name)
        if m:
            prefix = os.path.join(model_dir, m.group(1))
            if not complete_only or is_complete_checkpoint(prefix):
                found.append((int(m.group(1)[len("ckpt-"):]), prefix))
    return sorted(found)


def latest_complete_checkpoint(model_dir: str) -> Optional[str]:
    """The newest complete checkpoint prefix in a directory, or None.

    Candidates are the ``checkpoint`` state file's entries (which may name deleted
    files) and every ``ckpt-N`` of :func:`run_checkpoints`, newest step first; a
    candidate with a missing ``.index`` or data shard, or an index that cannot be
    read, is skipped for the previous one.
    """
    model_dir = os.fspath(model_dir)
    if not tf.io.gfile.isdir(model_dir):
        return None
    listed = []
    try:
        state = tf.train.get_checkpoint_state(model_dir)
    except (tf.errors.OpError, ValueError):
        state = None
    if state is not None:  # relative entries come joined to model_dir
        listed += list(state.all_model_checkpoint_paths) + [state.model_checkpoint_path]
    listed += [prefix for _, prefix in run_checkpoints(model_dir, complete_only=False)]
    candidates = {}
    for order, prefix in enumerate(p for p in listed if p):
        step = _STEP.search(os.path.basename(prefix))
        key = prefix if "://" in prefix else os.path.normpath(prefix)
        candidates[key] = (int(step.group(1)) if step else -1, order)
    for prefix in sorted(candidates, key=candidates.get, reverse=True):
        if is_complete_checkpoint(prefix):
            return prefix
    return None


def resolve_checkpoint(path: str) -> str:
    """Turns a directory, a prefix or a ``.index`` path into a checkpoint prefix.

    A directory resolves to its newest complete checkpoint
    (:func:`latest_complete_checkpoint`: the ``checkpoint`` state file's entries and
    a training run's ``ckpt-N``), else to its one ``<prefix>.index`` (as in Google's
    release archives).
    """
    path = os.fspath(path)
    if path.endswith(".index"):
        path = path[: -len(".index")]
    if tf.io.gfile.exists(path + ".index"):
        return path
    if tf.io.gfile.isdir(path):
        latest = latest_complete_checkpoint(path)
        if latest:
            return latest
        names = sorted(os.path.basename(i)
                       for i in tf.io.gfile.glob(os.path.join(path, "*.index")))
        broken = [n for n in names if _TRAINING_INDEX.match(n)]  # already tried
        others = [n for n in names if n not in broken]
        if len(others) == 1:
            return os.path.join(path, others[0][: -len(".index")])
        if len(others) > 1:
            raise CheckpointError(
                f"{path} holds several checkpoints ({', '.join(others)}) and no 'checkpoint' "
                "file saying which is latest; pass the prefix of one")
        raise CheckpointError(
            f"no checkpoint in directory {path}: {LOOKED_FOR}, each with its complete .data-* "
            "shards" + (f" (incomplete or unreadable: {', '.join(broken)})" if broken else ""))
    raise CheckpointError(f"checkpoint not found: {path} (neither {path}.index nor a directory)")


def read_checkpoint_shapes(path: str) -> dict:
    """``{name: shape list}`` of every entry in a checkpoint."""
    return dict(open_checkpoint(path)[2])



# While a format is detected and read (:func:`sharing_opened`), each checkpoint prefix is
# opened once: detection asks each format in turn, then the chosen one reads.
_OPENED: Optional[dict] = None


@contextlib.contextmanager
def sharing_opened():
    """Within this block, :func:`open_checkpoint` opens each prefix once and shares it."""
    global _OPENED
    outer, _OPENED = _OPENED, ({} if _OPENED is None else _OPENED)
    try:
        yield
    finally:
        _OPENED = outer


def _reader(prefix: str) -> tuple:
    """(reader, {name: shape}) of a checkpoint prefix, shared within :func:`sharing_opened`."""
    if _OPENED is not None and prefix in _OPENED:
        return _OPENED[prefix]
    reader = tf.train.load_checkpoint(prefix)
    opened = (reader, reader.get_variable_to_shape_map())
    if _OPENED is not None:
        _OPENED[prefix] = opened
    return opened


def open_checkpoint(path: str):
    """(prefix, reader, {name: shape}) of a checkpoint, or one CheckpointError."""
    prefix = resolve_checkpoint(path)
    try:
        reader, shapes = _reader(prefix)
    except (tf.errors.OpError, ValueError) as e:
        raise CheckpointError(f"cannot read checkpoint {prefix}: {first_line(e)}") from e
    return prefix, reader, shapes


def write_state_file(directory: str, latest: str, kept: Optional[Sequence[str]] = None,
                     timestamps: bool = False) -> None:
    """Atomically rewrites the directory's ``checkpoint`` state file (CheckpointState text).

    Args:
      latest: the prefix it points at (only its base name is written: entries are
        relative to the directory).
      kept: every prefix it lists, oldest first (default: ``latest`` alone).
      timestamps: also list each ``.index`` file's mtime, without which
        ``tf.train.CheckpointManager`` never rotates (deletes) the listed checkpoints.
    """
    kept = [latest] if kept is None else list(kept)
    names = [os.path.basename(p) for p in kept]
    state = (f'model_checkpoint_path: "{os.path.basename(latest)}"\n'
             + "".join(f'all_model_checkpoint_paths: "{n}"\n' for n in names))
    if timestamps:
        stamps = [tf.io.gfile.stat(os.path.join(directory, n) + ".index").mtime_nsec / 1e9
                  for n in names]
        state += "".join(f"all_model_checkpoint_timestamps: {t}\n" for t in stamps)
    write_text_atomic(os.path.join(directory, "checkpoint"), state)


def write_checkpoint_files(prefix: str, tensors: Mapping,
                           before_index: Optional[Callable[[], None]] = None) -> str:
    """Writes ``{key: tensor}`` as the checkpoint ``prefix`` (keys as given), atomically.

    The data and index are written under a temporary prefix in the same directory,
    ``before_index`` runs (e.g. to write the config beside the checkpoint), then the data
    shards and last the ``.index`` are renamed into place and the directory's
    ``checkpoint`` state file points at ``prefix``.
    """
    prefix = os.fspath(prefix)
    directory = os.path.dirname(prefix) or "."
    tf.io.gfile.makedirs(directory)
    tmp_prefix = os.path.join(directory, f".tmp-{uuid.uuid4().hex}", os.path.basename(prefix))
    names = sorted(tensors)
    try:
        tf.raw_ops.SaveV2(prefix=tmp_prefix, tensor_names=names,
                          shape_and_slices=[""] * len(names),
                          tensors=[tensors[n] for n in names])
        if before_index is not None:
            before_index()
        written = tf.io.gfile.glob(tmp_prefix + ".*")
        # Data shards first, index last: a reader only trusts a prefix whose .index exists.
        for src in sorted(written, key=lambda f: f.endswith(".index")):
            tf.io.gfile.rename(src, prefix + src[len(tmp_prefix):], overwrite=True)
    finally:
        if tf.io.gfile.exists(os.path.dirname(tmp_prefix)):
            tf.io.gfile.rmtree(os.path.dirname(tmp_prefix))
    write_state_file(directory, os.path.basename(prefix))
    return prefix
