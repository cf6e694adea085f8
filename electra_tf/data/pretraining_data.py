"""Pre-training data: corpus readers, example builder, TFRecord shards.

Raw text flows through four pieces, each usable on its own:

1. Corpus readers turn an input unit (a text file, a gzip/bz2/xz-compressed
   text file, a WikiExtractor file, an OpenWebText-style tar archive of text
   files, or one shard of a tensorflow-datasets text corpus) into a stream of
   stripped, non-empty lines with ``None`` marking document boundaries.
2. The tokenizer (``electra_tf.tokenization``) turns lines into wordpiece ids,
   in batches. Tokenization draws no random numbers, so batching does not
   change the order of the builder's random draws.
3. :class:`ExampleBuilder` packs the ids of consecutive lines into length-L
   examples exactly as the original ELECTRA ``ExampleBuilder`` does (random
   single-segment examples, random segment split, random short targets).
4. :class:`ShardWriter` serialises ``tf.train.Example`` records with the
   features ``input_ids``, ``input_mask`` and ``segment_ids`` (int64, fixed
   length L) round-robin into ``pretrain_data.tfrecord-<i>-of-<n>`` files.

:func:`build_pretraining_dataset` drives them over many input units with one
or several processes; :func:`read_pretraining_dataset` reads shards back.

Deliberate difference from the original: the original uses the unseeded
global ``random`` module and one builder per process whose state (the
short-target length) carries from one input file into the next. Here every
input unit gets its own ``random.Random`` seeded from ``seed`` and the unit's
index in the sorted input list, and its builder starts with target length L.
The set of examples is therefore a function of (seed, inputs) alone and the
same for any number of processes; which shard an example lands in depends on
the number of processes (as in the original: job j owns shards i mod P == j).

Input formats (``input_format``; "auto" decides per file):

* ``text``: one sentence/paragraph per line. With ``blanks_separate_docs``
  (default) a blank line ends a document; otherwise blank lines are skipped.
  The end of every file ends a document.
* ``wikiextractor``: WikiExtractor output. ``<doc ...>`` lines are dropped,
  ``</doc>`` ends a document, blank lines are skipped, and the title line
  (the line right after ``<doc ...>``) is dropped: it repeats the article's
  name, which the first paragraph normally starts with, and as its own
  "sentence" would mostly just waste the start of a segment.
  ``blanks_separate_docs`` does not apply.
* ``openwebtext``: a tar archive (optionally gz/bz2/xz compressed, e.g. the
  OpenWebText ``urlsf_subset*.xz`` files) of text files; each text file is
  one document and blank lines are skipped. The members are read in memory
  and shuffled with a seeded RNG (the original extracted them to a temporary
  directory and shuffled them). A plain text file read in this format is one
  document.
* gzip, bz2 and xz compression of text and WikiExtractor files is detected
  from the file's first bytes and undone transparently.

Bytes that are not valid UTF-8 are decoded with U+FFFD replacement characters
(the tokenizers drop U+FFFD, so the ids equal the original's "ignore errors"
decoding); the number of such lines is counted and reported.

Suspicious input is reported in one warning line per file and does not stop the
build: a file that looks binary (NUL bytes, or mostly bytes that are not text, in
its first 8 KiB after decompression) is skipped; a line longer than 1 MiB is
truncated to its first 1 MiB (an example only ever uses the first L - 2
wordpieces of a line, so for any practical L the examples are the same) and the
rest of it is read and dropped, never held in memory. A build that produces no
example at all (every input empty, whitespace or binary) is an error and writes
nothing.

Shards are written under hidden temporary names (``.pretrain_data.tfrecord-<i>-
of-<n>.tmp-<pid>-<ms>``) and renamed when every job has succeeded. A build
removes such files of earlier builds that were killed (whose process is gone;
with ``overwrite`` all of them). Worker processes stop, removing their temporary
files, when the builder process dies, even by SIGKILL.
"""

import contextlib
import dataclasses
import glob
import os
import random
import signal
import sys
import tarfile
import threading
import time
import traceback

from electra_tf.data import progress as progress_lib

__all__ = [
    "PretrainingDataError",
    "FEATURE_NAMES",
    "SHARD_PREFIX",
    "EMBEDDED_CORPUS_DIR",
    "EMBEDDED_CORPUS_NUM_OUT_FILES",
    "INPUT_FORMATS",
    "PackedExample",
    "ExampleBuilder",
    "assign_segments",
    "make_example",
    "unit_rng",
    "CorpusFile",
    "TfdsShard",
    "find_corpus_files",
    "default_corpus_files",
    "tfds_corpus_units",
    "detect_input_format",
    "TokenizerSpec",
    "ShardWriter",
    "shard_name",
    "existing_shards",
    "serialize_example",
    "pretraining_feature_spec",
    "parse_pretraining_example",
    "read_pretraining_dataset",
    "BuildStats",
    "build_pretraining_dataset",
    "format_summary",
]

FEATURE_NAMES = ("input_ids", "input_mask", "segment_ids")
SHARD_PREFIX = "pretrain_data.tfrecord"
INPUT_FORMATS = ("auto", "text", "wikiextractor", "openwebtext")

# The corpus shipped with the package (a WikiExtractor excerpt, see NOTICE.md
# there) and the number of shards used for it when --num_out_files is not
# given: its ~3 MB of text give ~3.4k examples at L = 128, so 1000 shards
# would hold ~3 examples each; 8 hold ~420.
EMBEDDED_CORPUS_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets", "corpus"
)
EMBEDDED_CORPUS_NUM_OUT_FILES = 8

# Probabilities of the original builder.
SINGLE_SEGMENT_PROB = 0.1
SHORT_TARGET_PROB = 0.05
SEGMENT_SPLIT_PROB = 0.5
_SINGLE_SEGMENT_TARGET = 100000
_MIN_SHORT_TARGET = 5

# Lines are tokenized in batches of about this many characters.
_TOKENIZE_BATCH_CHARS = 1 << 18
_TOKENIZE_BATCH_LINES = 4096

# Longer lines are truncated (their rest is read and dropped, never held in memory).
_MAX_LINE_BYTES = 1 << 20
# Bytes (after decompression) looked at to tell text from binary files.
_SNIFF_BYTES = 1 << 13
# A sample with more than this share of undecodable/control characters is binary.
_BINARY_SHARE = 0.3

_COMPRESSED_SUFFIXES = (
    ".gz",
    ".bz2",
    ".xz",
    ".lzma",
    ".zst",
    ".tgz",
    ".tbz2",
    ".txz",
    ".tar",
    ".zip",
    ".7z",
)


class PretrainingDataError(Exception):
    """A user error (bad input, output or flag): reported in one line."""


# ---------------------------------------------------------------------------
# Example builder (spec 5.2).
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PackedExample:
    """One pre-training example; every field has length max_seq_length."""

    input_ids: list
    input_mask: list
    segment_ids: list

    def as_tuple(self):
        return (tuple(self.input_ids), tuple(self.input_mask), tuple(self.segment_ids))


def assign_segments(sentences, first_target_length, rng):
    """Splits buffered sentences into two segments (the original's rule).

    A sentence goes to the first segment when (a) the first segment is empty,
    or (b) it fits below ``first_target_length``, or (c) the second segment is
    still empty, the first is below the target and ``rng.random() < 0.5``.
    Otherwise it goes to the second segment. The conditions are evaluated in
    that order with short-circuiting, so ``rng.random()`` is only drawn when (a)
    and (b) fail and the rest of (c) holds. A later short sentence may still
    satisfy (b) after an earlier one went to the second segment (the
    original's behaviour, kept).

    Returns:
      (first, second): two lists of token ids.
    """
    first, second = [], []
    for sentence in sentences:
        if (
            not first
            or len(first) + len(sentence) < first_target_length
            or (
                not second
                and len(first) < first_target_length
                and rng.random() < SEGMENT_SPLIT_PROB
            )
        ):
            first.extend(sentence)
        else:
            second.extend(sentence)
    return first, second


def make_example(first, second, max_seq_length, cls_id, sep_id):
    """[CLS] first [SEP] (second [SEP]), zero-padded to max_seq_length.

    Segments must already be truncated so that the result fits.
    """
    input_ids = [cls_id] + list(first) + [sep_id]
    segment_ids = [0] * len(input_ids)
    if second:
        input_ids += list(second) + [sep_id]
        segment_ids += [1] * (len(second) + 1)
    length = len(input_ids)
    if length > max_seq_length:
        raise ValueError(
            "example of %d tokens exceeds max_seq_length %d" % (length, max_seq_length)
        )
    pad = max_seq_length - length
    return PackedExample(
        input_ids=input_ids + [0] * pad,
        input_mask=[1] * length + [0] * pad,
        segment_ids=segment_ids + [0] * pad,
    )


class ExampleBuilder(object):
    """Packs lines of token ids into examples of length ``max_seq_length``.

    Feed it one line at a time with :meth:`add_line`: a list of token ids for a
    non-blank line, or ``None`` for a blank line (a document boundary). It
    returns a :class:`PackedExample` when one is completed, else ``None``.
    Call :meth:`add_line(None)` at the end of an input (as the original feeds
    an empty line at the end of every file) to flush the buffer.

    Args:
      max_seq_length: L, the length of every example (>= 5).
      cls_id, sep_id: ids of [CLS] and [SEP].
      rng: a ``random.Random``-like object (``random()`` and ``randint()``);
        the draws are, per emitted example: ``random()`` for the
        single-segment choice, ``random()`` per sentence when the segment rule
        needs it, ``random()`` for the short-target choice and, if it fires,
        ``randint(5, L)``.
    """

    def __init__(self, max_seq_length, cls_id, sep_id, rng):
        if max_seq_length < _MIN_SHORT_TARGET:
            raise ValueError(
                "max_seq_length must be at least %d, got %d" % (_MIN_SHORT_TARGET, max_seq_length)
            )
        self.max_seq_length = max_seq_length
        self.cls_id = cls_id
        self.sep_id = sep_id
        self.rng = rng
        self.target_length = max_seq_length
        self._sentences = []
        self._length = 0

    @property
    def buffered_tokens(self):
        return self._length

    def add_line(self, token_ids):
        """Adds one line; returns a finished example or None."""
        if token_ids is None:  # a blank line
            if self._length:
                return self._emit()
            token_ids = []  # as the original: an empty sentence (harmless)
        self._sentences.append(token_ids)
        self._length += len(token_ids)
        if self._length >= self.target_length:
            return self._emit()
        return None

    def _emit(self):
        rng = self.rng
        max_len = self.max_seq_length
        if rng.random() < SINGLE_SEGMENT_PROB:
            first_target = _SINGLE_SEGMENT_TARGET
        else:
            first_target = (self.target_length - 3) // 2
        first, second = assign_segments(self._sentences, first_target, rng)
        first = first[: max_len - 2]
        second = second[: max(0, max_len - len(first) - 3)]
        self._sentences = []
        self._length = 0
        if rng.random() < SHORT_TARGET_PROB:
            self.target_length = rng.randint(_MIN_SHORT_TARGET, max_len)
        else:
            self.target_length = max_len
        return make_example(first, second, max_len, self.cls_id, self.sep_id)


def unit_rng(seed, index, purpose="examples"):
    """The ``random.Random`` of input unit ``index`` (independent streams)."""
    return random.Random("electra-tf/%s/%d/%d" % (purpose, seed, index))


# ---------------------------------------------------------------------------
# Corpus readers.
# ---------------------------------------------------------------------------


class _Counters(object):
    """Per-job reading statistics, updated by the readers."""

    def __init__(self):
        self.bytes_read = 0  # bytes of the input files (compressed size)
        self.text_bytes = 0  # bytes of (decompressed) text
        self.lines = 0
        self.bad_utf8_lines = 0
        # Of the current unit: [(line number or None, length in bytes)] of truncated
        # lines, and why it was skipped (None: read).
        self.long_lines = []
        self.skipped = None
        self.truncated_lines = 0  # of the job


def _decode(raw, counters):
    counters.lines += 1
    counters.text_bytes += len(raw)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        counters.bad_utf8_lines += 1
        return raw.decode("utf-8", "replace")


def _open_maybe_compressed(raw_file):
    """Wraps a binary file in a decompressor chosen from its magic bytes."""
    head = raw_file.read(6)
    raw_file.seek(0)
    if head[:2] == b"\x1f\x8b":
        import gzip  # pylint: disable=g-import-not-at-top

        return gzip.GzipFile(fileobj=raw_file, mode="rb")
    if head[:3] == b"BZh":
        import bz2  # pylint: disable=g-import-not-at-top

        return bz2.BZ2File(raw_file, mode="rb")
    if head == b"\xfd7zXZ\x00":
        import lzma  # pylint: disable=g-import-not-at-top

        return lzma.LZMAFile(raw_file, mode="rb")
    return raw_file


def _is_tar(path):
    try:
        return tarfile.is_tarfile(path)
    except Exception:  # pylint: disable=broad-except
        return False  # unreadable, not a tar, or e.g. a corrupt compressed stream


def detect_input_format(path):
    """ "openwebtext" for tar archives, "wikiextractor" if the first non-blank
    line starts with ``<doc``, else "text"."""
    if _is_tar(path):
        return "openwebtext"
    try:
        with open(path, "rb") as raw_file:
            stream = _open_maybe_compressed(raw_file)
            for _ in range(1000):
                line = stream.readline(1 << 16)
                if not line:
                    break
                line = line.strip()
                if line:
                    return "wikiextractor" if line.startswith(b"<doc") else "text"
    except (OSError, EOFError) as e:
        raise PretrainingDataError("cannot read input file '%s': %s" % (path, e))
    return "text"


def _binary_reason(sample):
    """Why a file whose first bytes are ``sample`` is not text, or None."""
    if not sample:
        return None
    if b"\x00" in sample:
        return "NUL bytes in its first %s: binary, or UTF-16 text" % progress_lib.format_bytes(
            len(sample)
        )
    text = sample.decode("utf-8", "replace")
    if len(sample) == _SNIFF_BYTES:  # a character cut at the end of the sample is no evidence
        text = text[:-1]
    bad = text.count("\ufffd") + sum(1 for c in text if c < " " and c not in "\t\n\r\f\v\x1b")
    if text and bad > _BINARY_SHARE * len(text):
        return "%d%% of its first %s are not text" % (
            100 * bad // len(text),
            progress_lib.format_bytes(len(sample)),
        )
    return None


def _cut_utf8(raw):
    """``raw`` without a UTF-8 character cut in two at its end."""
    i = len(raw) - 1
    while i >= 0 and len(raw) - i <= 4 and (raw[i] & 0xC0) == 0x80:
        i -= 1
    if i >= 0 and raw[i] >= 0xC0:
        needed = 2 if raw[i] < 0xE0 else 3 if raw[i] < 0xF0 else 4
        if len(raw) - i < needed:
            return raw[:i]
    return raw


def _bounded_lines(stream, counters, count_bytes):
    """The lines of a binary stream, each cut to ``_MAX_LINE_BYTES``.

    The rest of a longer line is read in chunks and dropped; (line number, length)
    of each such line goes to ``counters.long_lines``. With ``count_bytes`` the
    bytes read are added to ``counters.bytes_read`` (for uncompressed files).
    """
    readline = stream.readline
    limit = _MAX_LINE_BYTES
    line_no = 0
    while True:
        raw = readline(limit)
        if not raw:
            return
        line_no += 1
        if count_bytes:
            counters.bytes_read += len(raw)
        if len(raw) == limit and raw[-1:] != b"\n":
            length = len(raw)
            while True:
                rest = readline(limit)
                if not rest:
                    break
                if count_bytes:
                    counters.bytes_read += len(rest)
                if rest[-1:] == b"\n":
                    length += len(rest) - 1
                    break
                length += len(rest)
            if length > limit:
                counters.long_lines.append((line_no, length))
                raw = _cut_utf8(raw)
        yield raw


def _truncate_line(raw, counters):
    """A line of an in-memory document, cut to ``_MAX_LINE_BYTES``."""
    if len(raw) > _MAX_LINE_BYTES:
        counters.long_lines.append((None, len(raw)))
        return _cut_utf8(raw[:_MAX_LINE_BYTES])
    return raw


def _long_lines_note(name, long_lines):
    """One warning line about the truncated lines of input ``name``."""
    where, length = long_lines[0]
    fmt = progress_lib.format_bytes
    note = "%s%s: a line of %s, truncated to its first %s" % (
        name,
        "" if where is None else " line %d" % where,
        fmt(length),
        fmt(_MAX_LINE_BYTES),
    )
    if len(long_lines) > 1:
        note += "; %d more such line(s) truncated" % (len(long_lines) - 1)
    return note


def _text_items(lines, counters, blanks_separate_docs):
    for raw in lines:
        line = _decode(raw, counters).strip()
        if line:
            yield line
        elif blanks_separate_docs:
            yield None
    yield None


def _wikiextractor_items(lines, counters):
    skip_title = False
    for raw in lines:
        line = _decode(raw, counters).strip()
        if not line:
            continue
        if skip_title:
            skip_title = False
            continue
        if line.startswith("<doc") and line.endswith(">"):
            skip_title = True
            yield None  # normally a no-op; guards against a missing </doc>
        elif line == "</doc>":
            yield None
        else:
            yield line
    yield None


def _document_items(data, counters):
    """One document from a whole text: non-blank lines, then a boundary."""
    lines = data.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    for raw in lines:
        line = _decode(_truncate_line(raw, counters), counters).strip()
        if line:
            yield line
    yield None


class _PositionTracker(object):
    """Reports bytes consumed from the raw file to the counters."""

    def __init__(self, raw_file, counters):
        self.raw_file = raw_file
        self.counters = counters
        self._base = counters.bytes_read

    def update(self):
        try:
            self.counters.bytes_read = self._base + self.raw_file.tell()
        except (OSError, ValueError):
            pass


@dataclasses.dataclass(frozen=True)
class CorpusFile:
    """An input file; ``index`` is its position in the sorted input list."""

    path: str
    index: int
    size: int

    @property
    def name(self):
        return self.path

    def iter_items(self, input_format, blanks_separate_docs, counters, seed):
        """Yields stripped non-empty lines (str) and None at document ends."""
        if input_format == "auto":
            fmt = detect_input_format(self.path)  # "openwebtext" only for archives
            is_archive = fmt == "openwebtext"
        else:
            fmt = input_format
            is_archive = fmt == "openwebtext" and _is_tar(self.path)
        if is_archive:
            yield from self._archive_items(counters, seed)
            return
        start = counters.bytes_read
        with open(self.path, "rb") as raw_file:
            tracker = _PositionTracker(raw_file, counters)
            stream = _open_maybe_compressed(raw_file)
            try:
                reason = _binary_reason(stream.read(_SNIFF_BYTES))
                stream.seek(0)
            except Exception as e:  # pylint: disable=broad-except  # e.g. a corrupt .gz/.xz
                raise PretrainingDataError("cannot read input file '%s': %s" % (self.path, e))
            if reason is not None:
                counters.skipped = "looks binary (%s)" % reason
                counters.bytes_read = start + self.size
                return
            if stream is raw_file:
                lines = _bounded_lines(raw_file, counters, count_bytes=True)
            else:
                lines = _tracked_lines(_bounded_lines(stream, counters, False), tracker)
            if fmt == "text":
                yield from _text_items(lines, counters, blanks_separate_docs)
            elif fmt == "wikiextractor":
                yield from _wikiextractor_items(lines, counters)
            elif fmt == "openwebtext":  # a plain file is one document
                yield from _document_items(b"".join(lines), counters)
            else:
                raise PretrainingDataError("unknown input format '%s'" % fmt)
        counters.bytes_read = start + self.size

    def _archive_items(self, counters, seed):
        start = counters.bytes_read
        members = []
        with open(self.path, "rb") as raw_file:
            tracker = _PositionTracker(raw_file, counters)
            try:
                with tarfile.open(fileobj=raw_file, mode="r|*") as archive:
                    for member in archive:
                        if not member.isfile():
                            continue
                        base = os.path.basename(member.name)
                        if base.startswith("."):
                            continue
                        if base.lower().endswith(_COMPRESSED_SUFFIXES):
                            raise PretrainingDataError(
                                "archive '%s' holds another archive ('%s'); extract the "
                                "outer archive first and point --corpus_dir at the inner "
                                "ones (e.g. `tar xf openwebtext.tar.xz`)" % (self.path, member.name)
                            )
                        data = archive.extractfile(member).read()
                        members.append((member.name, data))
                        tracker.update()
            except (tarfile.TarError, EOFError, OSError) as e:
                raise PretrainingDataError("cannot read archive '%s': %s" % (self.path, e))
        members.sort()
        unit_rng(seed, self.index, "members").shuffle(members)
        for _, data in members:
            yield from _document_items(data, counters)
        counters.bytes_read = start + self.size


def _tracked_lines(stream, tracker):
    for i, raw in enumerate(stream):
        if not i & 1023:
            tracker.update()
        yield raw


def _walk_files(directory):
    found = []
    for root, dirs, files in os.walk(directory, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if not name.startswith("."):
                found.append(os.path.join(root, name))
    return found


def find_corpus_files(corpus):
    """Resolves a directory, a file, or comma-separated globs to CorpusFiles.

    Directories are walked recursively (hidden files and folders skipped, so a
    WikiExtractor output tree ``AA/ AB/ ...`` can be passed as is). Returns the
    union sorted by path, each with its index in that order.

    Raises:
      PretrainingDataError: when a part matches no file.
    """
    parts = [p.strip() for p in str(corpus).split(",") if p.strip()]
    if not parts:
        raise PretrainingDataError("no input given (empty --corpus_dir)")
    paths = set()
    for part in parts:
        expanded = os.path.expanduser(part)
        if os.path.isdir(expanded):
            matched = _walk_files(expanded)
        elif os.path.isfile(expanded):
            matched = [expanded]
        else:
            matched = []
            for path in glob.glob(expanded, recursive=True):
                if os.path.isdir(path):
                    matched.extend(_walk_files(path))
                elif os.path.isfile(path):
                    matched.append(path)
        if not matched:
            raise PretrainingDataError("no input files found at '%s'" % part)
        paths.update(os.path.abspath(p) for p in matched)
    return [
        CorpusFile(path=p, index=i, size=os.path.getsize(p)) for i, p in enumerate(sorted(paths))
    ]


def default_corpus_files():
    """The embedded default corpus (``electra_tf/assets/corpus/*.gz``)."""
    return find_corpus_files(os.path.join(EMBEDDED_CORPUS_DIR, "*.gz"))


@dataclasses.dataclass(frozen=True)
class TfdsShard:
    """One shard of a split of a tensorflow-datasets text corpus.

    Each example is one document: its text is split into lines, blank lines
    are skipped.
    """

    dataset: str
    split: str
    data_dir: str
    text_key: str
    index: int
    size: int
    num_shards: int

    @property
    def name(self):
        return "%s:%s[%d/%d]" % (self.dataset, self.split, self.index, self.num_shards)

    def iter_items(self, input_format, blanks_separate_docs, counters, seed):
        del input_format, blanks_separate_docs, seed  # one example = one document
        import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

        builder = _tfds_builder(self.dataset, self.data_dir)
        split = self.split
        if self.num_shards > 1:
            split = "%s[%dshard]" % (self.split, self.index)
        dataset = builder.as_dataset(split=split, shuffle_files=False)
        start = counters.bytes_read
        text_bytes = 0
        for example in tfds.as_numpy(dataset):
            data = example[self.text_key]
            if isinstance(data, str):
                data = data.encode("utf-8")
            text_bytes += len(data)
            counters.bytes_read = start + min(text_bytes, self.size)
            yield from _document_items(bytes(data), counters)
        counters.bytes_read = start + self.size


@contextlib.contextmanager
def _quiet_absl_logging():
    """tfds logs warnings about missing folders that we turn into our error."""
    from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top,line-too-long

    old = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)
    try:
        yield
    finally:
        absl_logging.set_verbosity(old)


def _tfds_builder(dataset, data_dir):
    with _quiet_absl_logging():
        return _tfds_builder_noisy(dataset, data_dir)


def _tfds_builder_noisy(dataset, data_dir):
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

    try:
        return tfds.builder(dataset, data_dir=data_dir or None)
    except Exception as e:  # pylint: disable=broad-except
        # A dataset prepared elsewhere but not registered here can still be read
        # from its directory.
        if data_dir:
            candidates = [os.path.join(data_dir, dataset)]
            candidates += sorted(glob.glob(os.path.join(data_dir, dataset, "*")))
            candidates += sorted(glob.glob(os.path.join(data_dir, dataset, "*", "*")))
            for candidate in candidates:
                if os.path.isfile(os.path.join(candidate, "dataset_info.json")):
                    return tfds.builder_from_directory(candidate)
        raise PretrainingDataError(
            "tensorflow-datasets has no dataset '%s' (%s)"
            % (dataset, str(e).splitlines()[0] if str(e) else type(e).__name__)
        )


def tfds_corpus_units(dataset, split="train", data_dir=None, text_key="text"):
    """The shards of a *prepared* tfds text corpus, as input units.

    Never downloads: a dataset that is not prepared in ``data_dir`` (default
    ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``) is an error that says how
    to prepare it, instead of the minutes of network retries that a bare
    ``tfds.load`` spends on a machine without network.
    """
    with _quiet_absl_logging():
        builder = _tfds_builder_noisy(dataset, data_dir)
        prepared = builder.is_prepared()
    if not prepared:
        root = (
            data_dir or os.environ.get("TFDS_DATA_DIR") or os.path.join("~", "tensorflow_datasets")
        )
        raise PretrainingDataError(
            "tfds dataset '%s' is not prepared in '%s' and will not be downloaded "
            "here; prepare it where there is network access (`tfds build %s "
            "--data_dir=DIR`), copy DIR here and pass --tfds_data_dir=DIR"
            % (dataset, root, dataset)
        )
    features = builder.info.features
    if text_key not in features:
        raise PretrainingDataError(
            "tfds dataset '%s' has no feature '%s' (features: %s); set "
            "--tfds_text_key" % (dataset, text_key, ", ".join(sorted(features)))
        )
    splits = builder.info.splits
    base_split = split.split("[")[0]
    if base_split not in splits:
        raise PretrainingDataError(
            "tfds dataset '%s' has no split '%s' (splits: %s)"
            % (dataset, base_split, ", ".join(sorted(splits)))
        )
    info = splits[base_split]
    num_bytes = int(getattr(info, "num_bytes", 0) or 0)
    num_shards = int(getattr(info, "num_shards", 1) or 1)
    if "[" in split:  # a sliced split is read as one unit
        num_shards = 1
    data_dir = data_dir or ""
    per_shard = max(1, num_bytes // num_shards)
    return [
        TfdsShard(
            dataset=dataset,
            split=split,
            data_dir=data_dir,
            text_key=text_key,
            index=i,
            size=per_shard,
            num_shards=num_shards,
        )
        for i in range(num_shards)
    ]


# ---------------------------------------------------------------------------
# Tokenizer construction (picklable, so that worker processes can build it).
# ---------------------------------------------------------------------------


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
            what = self.spm_model or self.vocab_file or "the bundled vocab"
            raise PretrainingDataError("cannot load tokenizer from '%s': %s" % (what, e))


# ---------------------------------------------------------------------------
# TFRecord writing and reading (spec 5.3, 3.1).
# ---------------------------------------------------------------------------


def shard_name(index, num_out_files):
    """``pretrain_data.tfrecord-<i>-of-<n>``, no zero padding (as the original)."""
    return "%s-%d-of-%d" % (SHARD_PREFIX, index, num_out_files)


def _temp_shard_name(index, num_out_files, run_tag):
    # Hidden and not matching pretrain_data.tfrecord-*: an interrupted run
    # never leaves files that look like finished shards.
    return ".%s.tmp-%s" % (shard_name(index, num_out_files), run_tag)


def existing_shards(output_dir):
    """Sorted paths of ``pretrain_data.tfrecord-*`` files in ``output_dir``."""
    return sorted(glob.glob(os.path.join(glob.escape(output_dir), SHARD_PREFIX + "-*")))


def serialize_example(example):
    """A :class:`PackedExample` as a serialized ``tf.train.Example``."""
    # The generated protobuf class directly: about twice as fast as building
    # tf.train.Feature objects, same bytes.
    from tensorflow.core.example import example_pb2  # pylint: disable=g-import-not-at-top

    proto = example_pb2.Example()
    feature = proto.features.feature
    feature["input_ids"].int64_list.value.extend(example.input_ids)
    feature["input_mask"].int64_list.value.extend(example.input_mask)
    feature["segment_ids"].int64_list.value.extend(example.segment_ids)
    return proto.SerializeToString()


class ShardWriter(object):
    """Writes examples round-robin into the shards owned by one job.

    Job ``job_id`` of ``num_jobs`` owns shards ``i`` with ``i % num_jobs ==
    job_id``. Shards are written under hidden temporary names; :meth:`close`
    returns ``{temp_path: final_path}`` and :func:`_finalize_shards` renames
    them once every job has succeeded.
    """

    def __init__(self, output_dir, num_out_files, job_id=0, num_jobs=1, run_tag="0"):
        import tensorflow as tf  # pylint: disable=g-import-not-at-top

        self.indices = [i for i in range(num_out_files) if i % num_jobs == job_id]
        if not self.indices:
            raise ValueError("job %d of %d owns no shard of %d" % (job_id, num_jobs, num_out_files))
        self.paths = {}
        self._writers = []
        for i in self.indices:
            temp = os.path.join(output_dir, _temp_shard_name(i, num_out_files, run_tag))
            self.paths[temp] = os.path.join(output_dir, shard_name(i, num_out_files))
            self._writers.append(tf.io.TFRecordWriter(temp))
        self._next = 0
        self.num_written = 0

    def write(self, example):
        self._writers[self._next].write(serialize_example(example))
        self._next = (self._next + 1) % len(self._writers)
        self.num_written += 1

    def close(self):
        for writer in self._writers:
            writer.close()
        self._writers = []
        return dict(self.paths)


def pretraining_feature_spec(max_seq_length):
    """The original's parsing spec: three int64 features of length L."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    return {name: tf.io.FixedLenFeature([max_seq_length], tf.int64) for name in FEATURE_NAMES}


def parse_pretraining_example(serialized, max_seq_length, cast_to_int32=True):
    """Parses one serialized record (or a batch) into a dict of tensors."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    parse = tf.io.parse_single_example if serialized.shape.rank == 0 else tf.io.parse_example
    parsed = parse(serialized, pretraining_feature_spec(max_seq_length))
    if cast_to_int32:
        parsed = {k: tf.cast(v, tf.int32) for k, v in parsed.items()}
    return parsed


def _shard_files(file_patterns):
    if isinstance(file_patterns, str):
        file_patterns = file_patterns.split(",")
    files = set()
    for pattern in file_patterns:
        pattern = pattern.strip()
        if not pattern:
            continue
        if os.path.isdir(pattern):
            files.update(existing_shards(pattern))
        else:
            files.update(glob.glob(pattern))
    return sorted(files)


def read_pretraining_dataset(file_patterns, max_seq_length, cast_to_int32=True):
    """A ``tf.data.Dataset`` of dicts ``{input_ids, input_mask, segment_ids}``.

    Args:
      file_patterns: a directory of shards, a comma-separated string of globs,
        or a list of globs.
      max_seq_length: L of the records.
      cast_to_int32: cast the int64 features to int32 (as the original does).

    Records are read in file order, one file after the other, without
    shuffling or repetition: the pre-training input pipeline adds those.
    """
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    files = _shard_files(file_patterns)
    if not files:
        raise PretrainingDataError("no pre-training shards found at '%s'" % (file_patterns,))
    dataset = tf.data.TFRecordDataset(files)
    return dataset.map(
        lambda r: parse_pretraining_example(r, max_seq_length, cast_to_int32),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


# ---------------------------------------------------------------------------
# Driver.
# ---------------------------------------------------------------------------


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
    truncated_lines: int = 0  # lines over _MAX_LINE_BYTES
    files_written: list = dataclasses.field(default_factory=list)
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


@dataclasses.dataclass(frozen=True)
class _JobConfig:
    output_dir: str
    max_seq_length: int
    num_out_files: int
    seed: int
    blanks_separate_docs: bool
    input_format: str
    run_tag: str


def _process_unit(unit, cfg, tokenizer, writer, counters, stats, report):
    """Builds the examples of one input unit; returns True if it had no text.

    A unit skipped as binary goes to ``stats.skipped_inputs`` (not counted as
    empty); :func:`_unit_warnings` then says what was skipped or truncated.
    """
    counters.long_lines = []
    counters.skipped = None
    cls_id = tokenizer.special_ids["cls"]
    sep_id = tokenizer.special_ids["sep"]
    builder = ExampleBuilder(cfg.max_seq_length, cls_id, sep_id, unit_rng(cfg.seed, unit.index))
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

    for item in unit.iter_items(cfg.input_format, cfg.blanks_separate_docs, counters, cfg.seed):
        pending.append(item)
        if item is not None:
            pending_chars += len(item)
            if pending_chars >= _TOKENIZE_BATCH_CHARS or len(pending) >= _TOKENIZE_BATCH_LINES:
                flush()
                pending_chars = 0
    pending.append(None)  # the end of an input always ends a document
    flush()
    counters.truncated_lines += len(counters.long_lines)
    if counters.skipped is not None:
        stats.skipped_inputs.append(unit.name)
        return False
    if state["unit_lines"] == 0:
        stats.empty_inputs.append(unit.name)
        return True
    return False


def _unit_warnings(unit, counters):
    """The warning lines about the unit just processed (at most one per kind)."""
    warnings = []
    if counters.skipped is not None:
        warnings.append("%s %s: skipped" % (unit.name, counters.skipped))
    if counters.long_lines:
        warnings.append(_long_lines_note(unit.name, counters.long_lines))
    return warnings


def _run_job(job_id, num_jobs, units, cfg, tokenizer_factory, message):
    """Processes ``units`` into the shards of job ``job_id``.

    ``message(kind, payload)`` receives ("progress", bytes_read_delta),
    ("warning", text). Returns (BuildStats, {temp: final}).
    """
    tokenizer = tokenizer_factory()
    writer = ShardWriter(cfg.output_dir, cfg.num_out_files, job_id, num_jobs, cfg.run_tag)
    paths = writer.paths
    stats = BuildStats()
    counters = _Counters()
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
            for warning in _unit_warnings(unit, counters):
                message("warning", warning)
            if empty and not _is_empty_file(unit):
                message("warning", "input has no text: %s" % unit.name)
            report(force=True)
            stats.input_units += 1
        writer.close()
    except BaseException:
        writer.close()
        _remove_quietly(paths)
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


def _remove_quietly(paths):
    for path in paths:
        try:
            os.remove(path)
        except OSError:
            pass


def _pid_alive(pid):
    """Whether process ``pid`` exists (unknown counts as alive)."""
    if os.name == "nt":  # os.kill would terminate it
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0
    except OSError:
        return False
    return True


def _temp_shard_files(output_dir):
    """Temporary shards of any build in ``output_dir`` (our temp-name pattern only)."""
    pattern = ".%s-*-of-*.tmp-*" % SHARD_PREFIX
    return sorted(glob.glob(os.path.join(glob.escape(output_dir), pattern)))


def _temp_file_pid(path):
    """The builder pid in a temporary shard's name (``...tmp-<pid>-<ms>``), or None."""
    tag = os.path.basename(path).rsplit(".tmp-", 1)[-1]
    try:
        return int(tag.split("-")[0])
    except ValueError:
        return None


def _remove_stale_temp_files(output_dir, overwrite):
    """Removes temporary shards left by killed builds; returns (removed, kept).

    A file whose builder process still runs (another build writing here) is kept,
    unless ``overwrite``.
    """
    removed, kept = [], []
    for path in _temp_shard_files(output_dir):
        pid = _temp_file_pid(path)
        if not overwrite and pid is not None and pid != os.getpid() and _pid_alive(pid):
            kept.append(path)
            continue
        try:
            os.remove(path)
            removed.append(path)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise PretrainingDataError(
                "cannot remove the stale temporary shard '%s': %s" % (path, e.strerror or e)
            )
    return removed, kept


def _prepare_output_dir(output_dir, overwrite):
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise PretrainingDataError("output path '%s' exists and is not a directory" % output_dir)
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
    shards = existing_shards(output_dir)
    if shards and not overwrite:
        raise PretrainingDataError(
            "output directory '%s' already holds %d %s-* file(s); pass "
            "--overwrite to replace them, or choose another --output_dir"
            % (output_dir, len(shards), SHARD_PREFIX)
        )
    return shards


def _finalize_shards(output_dir, temp_to_final, old_shards):
    """Replaces old shards by the new ones (only after a successful build)."""
    new_finals = set(temp_to_final.values())
    _remove_quietly([p for p in old_shards if p not in new_finals])
    for temp, final in sorted(temp_to_final.items(), key=lambda kv: kv[1]):
        os.replace(temp, final)
    return sorted(new_finals, key=_shard_sort_key)


def _shard_sort_key(path):
    name = os.path.basename(path)
    try:
        return (0, int(name[len(SHARD_PREFIX) + 1 :].split("-of-")[0]), name)
    except ValueError:
        return (1, 0, name)


def _is_empty_file(unit):
    """An empty input file (warned about up front, not again per job)."""
    return isinstance(unit, CorpusFile) and unit.size == 0


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
):
    """Builds pre-training TFRecord shards from input units.

    Args:
      units: input units from :func:`find_corpus_files`,
        :func:`default_corpus_files` or :func:`tfds_corpus_units`.
      output_dir: where ``pretrain_data.tfrecord-<i>-of-<n>`` are written.
      tokenizer_factory: a picklable callable returning a tokenizer with
        ``encode_batch`` and ``special_ids`` (e.g. a :class:`TokenizerSpec`).
      max_seq_length: L.
      num_out_files: number of shards.
      num_processes: P; above 1 the work runs in P spawned processes (capped
        at the number of input units and at ``num_out_files``).
      seed: seeds the per-unit RNGs (see the module docstring).
      blanks_separate_docs: in "text" inputs, a blank line ends a document.
      input_format: one of INPUT_FORMATS.
      overwrite: replace existing shards in ``output_dir`` (only the
        ``pretrain_data.tfrecord-*`` files; nothing else is touched) and remove
        every temporary shard there, also of builds still running.
      show_progress: print a progress bar with ETA to ``stream``.
      stream: where progress and warnings go (default stderr).
      source: names the input in messages (default: the input file, or "the
        input").

    Returns:
      BuildStats.

    Raises:
      PretrainingDataError: for user errors (see the messages).
    """
    stream = stream if stream is not None else sys.stderr
    if input_format not in INPUT_FORMATS:
        raise PretrainingDataError(
            "--input_format must be one of %s, got '%s'" % ("|".join(INPUT_FORMATS), input_format)
        )
    if max_seq_length < _MIN_SHORT_TARGET:
        raise PretrainingDataError(
            "--max_seq_length must be at least %d, got %d" % (_MIN_SHORT_TARGET, max_seq_length)
        )
    if num_out_files < 1:
        raise PretrainingDataError("--num_out_files must be positive, got %d" % num_out_files)
    if num_processes < 1:
        raise PretrainingDataError("--num_processes must be positive, got %d" % num_processes)
    units = list(units)
    if not units:
        raise PretrainingDataError("no input units")
    if source is None:
        source = units[0].name if len(units) == 1 else "the input"
    if all(_is_empty_file(u) for u in units):
        raise PretrainingDataError(
            "%s produced no examples (%s, all empty or whitespace): nothing written"
            % (source, _count(len(units), "file"))
        )
    created = not os.path.exists(output_dir)
    old_shards = _prepare_output_dir(output_dir, overwrite)
    removed, kept = _remove_stale_temp_files(output_dir, overwrite)
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
            % (_count(len(kept), "temporary shard"), output_dir, _temp_file_pid(kept[0])),
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
    )
    for unit in units:
        if _is_empty_file(unit):
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
        _remove_quietly(temp_paths)
        _remove_quietly(_own_temp_files(output_dir, cfg.run_tag))
        raise
    bar.close()
    stats.stale_temp_files_removed = len(removed)
    if stats.examples == 0:
        _remove_quietly(temp_paths)
        _remove_quietly(_own_temp_files(output_dir, cfg.run_tag))
        if created:
            try:
                os.rmdir(output_dir)  # only if still empty
            except OSError:
                pass
        why = _no_examples_why(units, stats)
        raise PretrainingDataError("%s produced no examples (%s): nothing written" % (source, why))
    stats.files_written = _finalize_shards(output_dir, temp_paths, old_shards)
    stats.output_bytes = sum(os.path.getsize(p) for p in stats.files_written)
    stats.seconds = time.monotonic() - start
    return stats


def _count(n, noun):
    return "%d %s%s" % (n, noun, "" if n == 1 else "s")


def _no_examples_why(units, stats):
    """Why a build made no example, e.g. "3 files, all empty or whitespace"."""
    kind = "file" if all(isinstance(u, CorpusFile) for u in units) else "input"
    total = len(units)
    skipped = len(stats.skipped_inputs)
    empty = len(stats.empty_inputs)
    if empty == total:
        return "%s, all empty or whitespace" % _count(total, kind)
    if skipped == total:
        return "%s, all skipped as binary" % _count(total, kind)
    parts = []
    if skipped:
        parts.append("%d skipped as binary" % skipped)
    if empty:
        parts.append("%d empty or whitespace" % empty)
    rest = total - skipped - empty
    if rest:
        parts.append("%d whose text gave no wordpieces (wrong vocab?)" % rest)
    return "%s: %s" % (_count(total, kind), ", ".join(parts))


def _own_temp_files(output_dir, run_tag):
    return glob.glob(
        os.path.join(glob.escape(output_dir), ".%s-*.tmp-%s" % (SHARD_PREFIX, run_tag))
    )


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
    ):
        if names:
            lines.append(
                "%s: %d (%s%s)"
                % (label, len(names), ", ".join(names[:3]), ", ..." if len(names) > 3 else "")
            )
    if stats.truncated_lines:
        limit = fmt_b(_MAX_LINE_BYTES)
        lines.append("lines over %s truncated: %d" % (limit, stats.truncated_lines))
    return lines


def build_embedded_dataset(
    output_dir, max_seq_length=128, vocab_file=None, seed=0, show_progress=True, stream=None
):
    """Builds TFRecords from the corpus bundled in the package (the quick-start data)."""
    return build_pretraining_dataset(
        default_corpus_files(),
        output_dir,
        TokenizerSpec(vocab_file=vocab_file),
        max_seq_length=max_seq_length,
        num_out_files=EMBEDDED_CORPUS_NUM_OUT_FILES,
        seed=seed,
        show_progress=show_progress,
        stream=stream,
    )
