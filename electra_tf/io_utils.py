"""File writing that never leaves a half-written file or directory behind, never replaces
what the writing command did not write, and one-line error text for the command-line tools."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import threading
import uuid
from typing import Callable, Optional

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask (from /proc on Linux, else by setting and restoring it)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        umask = os.umask(0o022)
        os.umask(umask)
    return umask


def chmod_as_new_file(path: str, directory: bool = False) -> None:
    """Gives ``path`` the mode a plain ``open()`` (``mkdir``) would have given it:
    0666 (0777) minus the umask, i.e. 0644 (0755) usually. Files made by mkstemp,
    mkdtemp or libraries writing through them are 0600 (0700) otherwise."""
    os.chmod(path, (0o777 if directory else 0o666) & ~current_umask())


def write_text_atomic(path: str, text: str) -> str:
    """Writes ``text`` to ``path`` through a temporary sibling renamed into place.

    Local paths get a flushed, fsynced temporary file and ``os.replace`` (atomic on
    POSIX); remote paths (``gs://``...) go through ``tf.io.gfile`` with a rename. The
    directory is created if needed. Returns ``path``.
    """
    if "://" in path:
        import tensorflow as tf
        tmp = f"{path}.tmp-{uuid.uuid4().hex}"
        with tf.io.gfile.GFile(tmp, "w") as f:
            f.write(text)
        tf.io.gfile.rename(tmp, path, overwrite=True)
        return path
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        chmod_as_new_file(tmp)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def check_output_directory(output_dir: str, overwrite: bool = False) -> None:
    """Raises FileExistsError for an output that exists and is not an empty directory."""
    if os.path.lexists(output_dir):
        if not os.path.isdir(output_dir):
            raise FileExistsError(f"output {output_dir} exists and is not a directory")
        if os.listdir(output_dir) and not overwrite:
            raise FileExistsError(f"output directory {output_dir} exists and is not empty: "
                                  "pass --overwrite (overwrite=True) to replace it, or choose "
                                  "another output")


# ---------------------------------------------------------------------------
# Whose output a directory is
# ---------------------------------------------------------------------------

# Written into every directory an output-writing command creates (``staged_directory`` with
# ``command``): an --overwrite replaces a directory only when the same command wrote it.
OUTPUT_RECORD = ".electra_tf_output.json"

_RUN_CHECKPOINT = re.compile(r"^ckpt-\d+\.index$")


class OutputRefused(FileExistsError):
    """An output directory holding what the writing command did not write: it is never
    replaced or written into, ``--overwrite`` or not."""


def written_by(directory: str) -> Optional[str]:
    """The command recorded in ``directory``'s :data:`OUTPUT_RECORD`, else None."""
    try:
        with open(os.path.join(directory, OUTPUT_RECORD), encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record.get("command") if isinstance(record, dict) else None


def _examples(names, limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def describe_contents(directory: str) -> str:
    """What ``directory`` holds, in words naming some of its files: "a pre-training run
    (ckpt-40.index, pretraining_config.json)", "a checkpoint (model.ckpt-2.index)", "a
    SavedModel", "a transformers model", "pre-training data", or "3 entries (a, b, c)"."""
    names = sorted(os.listdir(directory))
    runs = sorted((n for n in names if _RUN_CHECKPOINT.match(n)),
                  key=lambda n: int(n[len("ckpt-"):-len(".index")]))
    checkpoints = [n for n in names if n.endswith(".index") and n not in runs]
    config = [n for n in names if n == "pretraining_config.json"]
    if runs:
        return f"a pre-training run ({_examples(runs[-1:] + config)})"
    if checkpoints:
        return f"a checkpoint ({_examples(checkpoints)})"
    if "saved_model.pb" in names:
        return "a SavedModel (saved_model.pb)"
    weights = [n for n in names if n in ("model.safetensors", "pytorch_model.bin")]
    if weights and "config.json" in names:
        return f"a transformers model (config.json, {weights[0]})"
    shards = [n for n in names if n.startswith("pretrain_data.tfrecord")]
    if shards:
        return f"pre-training data ({_examples(shards)})"
    return f"{len(names)} entr{'y' if len(names) == 1 else 'ies'} ({_examples(names)})"


def foreign_contents(output_dir: str, command: str,
                     own: Optional[Callable[[str], bool]] = None) -> Optional[str]:
    """What ``output_dir`` holds that ``command`` did not write (see
    :func:`describe_contents`), or None: absent, empty, or an earlier output of
    ``command`` (its :data:`OUTPUT_RECORD`, or ``own(output_dir)`` for outputs of
    versions that wrote no record).

    Raises OutputRefused for a path that exists and is not a directory.
    """
    if not os.path.lexists(output_dir):
        return None
    if not os.path.isdir(output_dir):
        raise OutputRefused(f"output {output_dir} exists and is not a directory: choose "
                            "another output")
    if not os.listdir(output_dir):
        return None
    if written_by(output_dir) == command or (own is not None and own(output_dir)):
        return None
    return describe_contents(output_dir)


def refuse_foreign_output(output_dir: str, command: str, flag: str = "--output",
                          own: Optional[Callable[[str], bool]] = None) -> None:
    """Raises OutputRefused when ``output_dir`` holds what ``command`` did not write: one
    line naming the directory, what it holds and what to do."""
    what = foreign_contents(output_dir, command, own)
    if what is not None:
        raise OutputRefused(
            f"{flag} {output_dir} holds {what}, which {command} did not write: it replaces "
            f"only its own earlier output, --overwrite or not; choose another {flag} (or "
            "move that directory away yourself)")


@contextlib.contextmanager
def staged_directory(output_dir: str, overwrite: bool = False, command: Optional[str] = None,
                     own: Optional[Callable[[str], bool]] = None):
    """Yields a temporary sibling of ``output_dir``; renames it into place on success.

    An existing empty directory is replaced; a non-empty one only with ``overwrite``
    (it is moved aside, the new one renamed in, then the old one deleted). On an
    error the temporary directory is removed and ``output_dir`` is untouched. Local
    paths only.

    With ``command`` (e.g. ``"electra_tf.convert"``) the directory written records it
    (:data:`OUTPUT_RECORD`), and a non-empty ``output_dir`` that ``command`` did not write
    (:func:`foreign_contents`; ``own`` recognises older outputs) is refused with
    :class:`OutputRefused` before and again just before the rename, ``overwrite`` or not.
    """
    output_dir = os.path.abspath(os.fspath(output_dir))
    if command is not None:
        refuse_foreign_output(output_dir, command, own=own)
    check_output_directory(output_dir, overwrite)
    parent, base = os.path.split(output_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=f".{base}.tmp-")
    try:
        yield tmp
        if command is not None:
            write_text_atomic(os.path.join(tmp, OUTPUT_RECORD),
                              json.dumps({"command": command}) + "\n")
        chmod_as_new_file(tmp, directory=True)  # mkdtemp creates 0700
        if command is not None:  # another process may have written there meanwhile
            refuse_foreign_output(output_dir, command, own=own)
        check_output_directory(output_dir, overwrite)
        if os.path.isdir(output_dir) and os.listdir(output_dir):
            old = os.path.join(parent, f".{base}.old-{uuid.uuid4().hex}")
            os.rename(output_dir, old)
            os.rename(tmp, output_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, output_dir)  # replaces an empty directory atomically
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def first_line(error: BaseException) -> str:
    """The first non-empty line of an error's message (a KeyError's without quotes)."""
    text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[0].strip() if lines else type(error).__name__


def short_value(value, as_text: Callable = str, limit: int = 40) -> str:
    """A setting's value for a one-line "what changed" message: JSON for a dict or list,
    ``as_text(value)`` otherwise, cut to ``limit`` characters."""
    text = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else as_text(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
