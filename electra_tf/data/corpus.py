"""Corpus reading: input units to a stream of lines and document boundaries.

An input unit (a text file, a gzip/bz2/xz-compressed text file, a WikiExtractor
file, an OpenWebText-style tar archive of text files, or one shard of a
tensorflow-datasets text corpus) yields stripped, non-empty lines (``str``) with
``None`` marking document boundaries; :func:`find_corpus_files`,
:func:`default_corpus_files` and :func:`tfds_corpus_units` list the units of an
input. Each unit has an ``index`` (its position in the sorted input list) that
seeds its own random streams (:func:`unit_rng`), so what a unit gives does not
depend on which process reads it.

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
rest of it is read and dropped, never held in memory.

Only regular files are read (symbolic links are followed when they resolve): a
named pipe, socket or device, a dangling link or an entry that cannot be looked at
is skipped with one warning line (an error with ``strict``), so a build never
blocks on a file. A file that fails while it is read (a truncated or corrupt
gzip/bz2/xz stream, a permission or I/O error) raises
:class:`UnreadableInputError`, which the build turns into one warning line naming
the file (its text read until then is used) or, with ``--strict``, an error.
"""

import contextlib
import dataclasses
import glob
import lzma
import os
import random
import stat
import sys
import tarfile
import zlib

from electra_tf.data import progress as progress_lib
from electra_tf.data.errors import PretrainingDataError
from electra_tf.io_utils import first_line

INPUT_FORMATS = ("auto", "text", "wikiextractor", "openwebtext")

# The corpus shipped with the package (a WikiExtractor excerpt, see NOTICE.md
# there) and the number of shards used for it when --num_out_files is not
# given: its ~3 MB of text give ~3.4k examples at L = 128, so 1000 shards
# would hold ~3 examples each; 8 hold ~420.
EMBEDDED_CORPUS_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets", "corpus"
)
EMBEDDED_CORPUS_NUM_OUT_FILES = 8

# Longer lines are truncated (their rest is read and dropped, never held in memory).
MAX_LINE_BYTES = 1 << 20
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


# What reading a damaged or unreadable file raises (gzip's BadGzipFile and bz2's errors
# are OSErrors; a truncated stream ends in EOFError; corrupt deflate data is zlib.error).
READ_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError, tarfile.TarError)


class UnreadableInputError(PretrainingDataError):
    """An input file failed while it was read (damaged compression, permission, I/O).

    Attributes:
      path: the file.
      detail: what failed, e.g. "EOFError: Compressed file ended before the end-of-stream
        marker was reached".
    """

    def __init__(self, path, error):
        detail = str(error).strip() or type(error).__name__
        if not isinstance(error, PretrainingDataError):
            detail = "%s: %s" % (type(error).__name__, detail)
        super().__init__("cannot read input file '%s' (%s)" % (path, detail))
        self.path, self.detail = path, detail


def unit_rng(seed, index, purpose="examples"):
    """The ``random.Random`` of input unit ``index`` (independent streams)."""
    return random.Random("electra-tf/%s/%d/%d" % (purpose, seed, index))



class ReadCounters(object):
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
        # Of the current unit: (what failed, lines of text read before) when reading it
        # failed (UnreadableInputError), else None.
        self.unreadable = None
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
    except READ_ERRORS as e:
        raise UnreadableInputError(path, e) from e
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
    """The lines of a binary stream, each cut to ``MAX_LINE_BYTES``.

    The rest of a longer line is read in chunks and dropped; (line number, length)
    of each such line goes to ``counters.long_lines``. With ``count_bytes`` the
    bytes read are added to ``counters.bytes_read`` (for uncompressed files).
    """
    readline = stream.readline
    limit = MAX_LINE_BYTES
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
    """A line of an in-memory document, cut to ``MAX_LINE_BYTES``."""
    if len(raw) > MAX_LINE_BYTES:
        counters.long_lines.append((None, len(raw)))
        return _cut_utf8(raw[:MAX_LINE_BYTES])
    return raw


def _long_lines_note(name, long_lines):
    """One warning line about the truncated lines of input ``name``."""
    where, length = long_lines[0]
    fmt = progress_lib.format_bytes
    note = "%s%s: a line of %s, truncated to its first %s" % (
        name,
        "" if where is None else " line %d" % where,
        fmt(length),
        fmt(MAX_LINE_BYTES),
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
        """Yields stripped non-empty lines (str) and None at document ends.

        Raises:
          UnreadableInputError: the file failed while it was read (the lines yielded
            until then are good text).
        """
        try:
            yield from self._items(input_format, blanks_separate_docs, counters, seed)
        except UnreadableInputError:
            raise
        except READ_ERRORS as e:
            raise UnreadableInputError(self.path, e) from e

    def _items(self, input_format, blanks_separate_docs, counters, seed):
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
                raise UnreadableInputError(self.path, e) from e
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
            except READ_ERRORS as e:
                raise UnreadableInputError(self.path, e) from e
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


_FILE_KINDS = (
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a directory"),
)


def _why_not_readable(path):
    """None for a regular file (symbolic links followed), else why it is not read."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if os.path.islink(path):
            return "a dangling symbolic link (to %s)" % os.readlink(path)
        return "gone (deleted while the input was listed)"
    except OSError as e:  # e.g. a symbolic link loop, a directory without permission
        return "cannot be looked at (%s)" % (e.strerror or e)
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _FILE_KINDS if test(mode)), "a special file")
    return "not a regular file (%s)" % kind


def _walk_files(directory, skip):
    """Every non-hidden entry under ``directory`` except directories (links followed;
    a directory reached twice, e.g. through a link loop, is walked once)."""
    found = []
    seen = set()

    def unlistable(error):
        skip(error.filename, "cannot be listed (%s)" % (error.strerror or error))

    for root, dirs, files in os.walk(directory, followlinks=True, onerror=unlistable):
        try:
            info = os.stat(root)
        except OSError:
            dirs[:] = []
            continue
        if (info.st_dev, info.st_ino) in seen:
            skip(root, "a directory already read (a symbolic link loop)")
            dirs[:] = []
            continue
        seen.add((info.st_dev, info.st_ino))
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if not name.startswith("."):
                found.append(os.path.join(root, name))
    return found


def _warn_and_skip(path, reason):
    print("warning: %s: %s: skipped" % (path, reason), file=sys.stderr, flush=True)


def find_corpus_files(corpus, strict=False, on_skip=None):
    """Resolves a directory, a file, or comma-separated globs to CorpusFiles.

    Directories are walked recursively (hidden files and folders skipped, so a
    WikiExtractor output tree ``AA/ AB/ ...`` can be passed as is). Only regular
    files are kept (symbolic links are followed): every other entry (a named pipe,
    socket or device, a dangling link, an entry that cannot be looked at) is passed
    to ``on_skip(path, reason)`` (default: one ``warning:`` line on stderr) or, with
    ``strict``, is an error. Returns the union sorted by path, each with its index in
    that order.

    Raises:
      PretrainingDataError: when a part matches no readable file, or with ``strict``
        for the first entry that is not a readable regular file.
    """
    parts = [p.strip() for p in str(corpus).split(",") if p.strip()]
    if not parts:
        raise PretrainingDataError("no input given (empty --corpus_dir)")
    skipped = []

    def skip(path, reason):
        if strict:
            raise PretrainingDataError(
                "input %s: %s: remove it from the corpus, or run without --strict to skip it"
                % (path, reason))
        skipped.append((path, reason))
        (on_skip or _warn_and_skip)(path, reason)

    paths = set()
    for part in parts:
        expanded = os.path.expanduser(part)
        if os.path.isdir(expanded):
            candidates = _walk_files(expanded, skip)
        elif os.path.lexists(expanded):
            candidates = [expanded]
        else:
            candidates = []
            for path in glob.glob(expanded, recursive=True):
                if os.path.isdir(path):
                    candidates.extend(_walk_files(path, skip))
                else:
                    candidates.append(path)
        matched = []
        for path in candidates:
            reason = _why_not_readable(path)
            if reason is None:
                matched.append(path)
            else:
                skip(path, reason)
        if not matched:
            raise PretrainingDataError(
                "no input files found at '%s'%s"
                % (part, " (%d entries skipped, see the warnings)" % len(skipped)
                   if skipped else ""))
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
            % (dataset, first_line(e))
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


def read_warnings(unit, counters):
    """The warning lines about the unit just read (at most one per kind)."""
    warnings = []
    if counters.unreadable is not None:
        detail, lines = counters.unreadable
        if lines:
            warnings.append("cannot read %s past its first %d lines of text (%s): the rest "
                            "of it is skipped" % (unit.name, lines, detail))
        else:
            warnings.append("cannot read %s (%s): skipped" % (unit.name, detail))
    if counters.skipped is not None:
        warnings.append("%s %s: skipped" % (unit.name, counters.skipped))
    if counters.long_lines:
        warnings.append(_long_lines_note(unit.name, counters.long_lines))
    return warnings


def is_empty_file(unit):
    """An empty input file (warned about up front, not again per job)."""
    return isinstance(unit, CorpusFile) and unit.size == 0
