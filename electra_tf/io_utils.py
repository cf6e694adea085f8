"""File writing that never leaves a half-written file behind."""

from __future__ import annotations

import os
import tempfile
import uuid


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
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path
