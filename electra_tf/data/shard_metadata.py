"""``pretrain_data.json``: what a build's shards hold, written beside them.

A record only says how long its features are once it is parsed, and which vocab
its ids index not at all; a run at another ``max_seq_length`` or with another
vocab would fail with a parse error or, worse, train on ids that mean other
wordpieces. The build therefore writes, after its shards are in place::

    {"builder_version": 1, "electra_tf_version": "0.1.0",
     "max_seq_length": 128,
     "vocab": {"kind": "wordpiece", "file": "vocab.txt", "size": 30522,
               "sha256": "<12 hex digits>"},
     "do_lower_case": true, "strip_accents": true,
     "num_files": 8, "num_examples": 3391, "corpus": "...",
     "input_format": "auto", "seed": 0}

and :func:`check_metadata` compares it with a run before any training. Shards of
older builds have no such file and are taken as they are.

A WordPiece vocab's ``size`` is its number of tokens and its hash covers the
tokens in id order (so a copy with other line endings is the same vocab); a
SentencePiece model's ``size`` is its number of bytes and its hash covers those
bytes. ``vocab`` and the casing are null when the build's tokenizer does not
describe itself (a test tokenizer).

Reading uses plain file reads (``tf.io.gfile`` only for remote paths), no
TensorFlow op: the check runs before a distribution strategy is created.
"""

import hashlib
import json
import os

from electra_tf.data.errors import PretrainingDataError

METADATA_FILE = "pretrain_data.json"
# Raised when what a build writes for the same inputs and flags changes.
BUILDER_VERSION = 1
_HASH_DIGITS = 12


def is_metadata_file(path):
    """Whether ``path`` names a shard description (never a record file)."""
    return os.path.basename(path) == METADATA_FILE


def metadata_path(directory):
    return os.path.join(directory, METADATA_FILE)


def vocab_fingerprint(vocab_file=None, spm_model=None):
    """``{kind, file, size, sha256}`` of a WordPiece vocab (default: the bundled one)
    or of a SentencePiece model."""
    from electra_tf import tokenization  # pylint: disable=g-import-not-at-top

    if spm_model:
        data = _read_bytes(spm_model, "SentencePiece model")
        return {"kind": "sentencepiece", "file": os.path.basename(spm_model),
                "size": len(data), "sha256": _short_hash(data)}
    vocab_file = vocab_file or tokenization.default_vocab_file()
    tokens = tokenization.load_vocab_tokens(vocab_file)
    return {"kind": "wordpiece", "file": os.path.basename(vocab_file), "size": len(tokens),
            "sha256": _short_hash("\n".join(tokens).encode("utf-8"))}


def write_metadata(directory, metadata):
    """Writes ``metadata`` (a JSON-able dict) to ``<directory>/pretrain_data.json``
    atomically; returns its path."""
    from electra_tf.io_utils import write_text_atomic  # pylint: disable=g-import-not-at-top

    path = metadata_path(directory)
    try:
        return write_text_atomic(path, json.dumps(metadata, indent=2) + "\n")
    except OSError as e:
        raise PretrainingDataError("cannot write %s: %s" % (path, e.strerror or e))


def remove_metadata(directory):
    """Removes ``<directory>/pretrain_data.json`` if there is one."""
    try:
        os.remove(metadata_path(directory))
    except FileNotFoundError:
        pass
    except OSError as e:
        raise PretrainingDataError(
            "cannot remove %s: %s" % (metadata_path(directory), e.strerror or e))


def read_metadata(directory):
    """The description of the shards in ``directory``, or None when it has none.

    Raises:
      PretrainingDataError: the file is there but is not a JSON object.
    """
    path = metadata_path(directory)
    try:
        data = _read_bytes(path, "shard description")
    except FileNotFoundError:
        return None
    except OSError as e:
        raise PretrainingDataError("%s: cannot read it (%s)" % (path, e.strerror or e))
    try:
        metadata = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        metadata = None
    if not isinstance(metadata, dict):
        raise PretrainingDataError(
            "%s: not a description of pre-training shards (no JSON object); rebuild the "
            "shards with build_pretraining_dataset.py or remove the file" % path)
    return metadata


def check_metadata(directory, max_seq_length, vocab_file=None):
    """Checks the shards in ``directory`` against a run, when they are described.

    Args:
      max_seq_length: the run's L.
      vocab_file: the run's WordPiece vocab; None skips the vocab comparison.
    Raises:
      PretrainingDataError: naming the file, both values and what to do.
    """
    metadata = read_metadata(directory)
    if metadata is None:
        return
    path = metadata_path(directory)
    built_length = metadata.get("max_seq_length")
    if built_length is not None and built_length != max_seq_length:
        raise PretrainingDataError(
            "%s: the shards were built with max_seq_length %s but this run has "
            "max_seq_length %d: pass --max_seq_length=%s, or rebuild the shards with "
            "build_pretraining_dataset.py --max_seq_length=%d"
            % (path, built_length, max_seq_length, built_length, max_seq_length))
    built_vocab = metadata.get("vocab")
    if vocab_file is None or not isinstance(built_vocab, dict) or \
            built_vocab.get("kind") != "wordpiece":
        return
    run_vocab = vocab_fingerprint(vocab_file)
    if built_vocab.get("sha256") != run_vocab["sha256"]:
        raise PretrainingDataError(
            "%s: the shards were built with the vocab %s but this run uses %s (%s): pass "
            "--vocab_file=<the vocab the shards were built with>, or rebuild the shards "
            "with build_pretraining_dataset.py --vocab_file=%s"
            % (path, _describe_vocab(built_vocab), _describe_vocab(run_vocab), vocab_file,
               vocab_file))


def _describe_vocab(fingerprint):
    """e.g. "'vocab.txt' (30522 tokens, sha256 0123456789ab)"."""
    return "'%s' (%s tokens, sha256 %s)" % (
        fingerprint.get("file"), fingerprint.get("size"), fingerprint.get("sha256"))


def _short_hash(data):
    return hashlib.sha256(data).hexdigest()[:_HASH_DIGITS]


def _read_bytes(path, what="file"):
    """A local or (``gs://``...) remote file's bytes; FileNotFoundError when absent."""
    from electra_tf import tokenization  # pylint: disable=g-import-not-at-top

    return tokenization._read_bytes(path, what)  # pylint: disable=protected-access
