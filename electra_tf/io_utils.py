"""File writing that never leaves a half-written file or directory behind, and one-line
error text for the command-line tools."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import uuid

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


@contextlib.contextmanager
def staged_directory(output_dir: str, overwrite: bool = False):
    """Yields a temporary sibling of ``output_dir``; renames it into place on success.

    An existing empty directory is replaced; a non-empty one only with ``overwrite``
    (it is moved aside, the new one renamed in, then the old one deleted). On an
    error the temporary directory is removed and ``output_dir`` is untouched. Local
    paths only.
    """
    output_dir = os.path.abspath(os.fspath(output_dir))
    check_output_directory(output_dir, overwrite)
    parent, base = os.path.split(output_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=f".{base}.tmp-")
    try:
        yield tmp
        chmod_as_new_file(tmp, directory=True)  # mkdtemp creates 0700
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
