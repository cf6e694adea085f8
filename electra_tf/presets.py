"""Google's released ELECTRA models by name: registry, download, cache and verification.

    ElectraBackbone.from_preset("electra_small_discriminator")      # or from_pretrained
    python -m electra_tf.detect --checkpoint=google/electra-base-discriminator "a text"
    python run_finetuning.py --init_checkpoint=electra_large_discriminator_uncased_en ...

Google released three archives (spec 7.3, 9): ``electra_small.zip``, ``electra_base.zip``
and ``electra_large.zip``, each a TF1 checkpoint holding the discriminator (``electra/``,
``discriminator_predictions/``) and its generator (``generator/``,
``generator_predictions/``) with ``vocab.txt``. Each archive answers to several names:

* ``electra_<size>_discriminator`` (also keras-hub's ``electra_<size>_discriminator_uncased_en``
  and the Hugging Face hub's ``google/electra-<size>-discriminator``): the discriminator
  with its replaced-token detection head (the encoder of backbones and fine-tuning).
* ``electra_<size>_generator`` (``..._generator_uncased_en``, ``google/electra-<size>-generator``):
  the generator, its encoder moved under ``electra/`` with its masked-LM head (the
  original's MLM-only layout, spec 3.11): a backbone of the generator's width, as
  keras-hub's generator presets are, and the masked LM of ``scoring --method=mlm``.
* ``electra_<size>``: the whole release (both networks, as the unzipped directory reads),
  e.g. to continue pre-training.

A name is resolved only when no file or directory of that name exists: a local path always
wins. The first use downloads the archive from ``$ELECTRA_TF_PRESET_URL`` (default
Google's bucket, :data:`BASE_URL`) into the cache directory (``$ELECTRA_TF_PRESETS``, else
``$XDG_CACHE_HOME/electra_tf/presets``, else ``~/.cache/electra_tf/presets``), with a
progress line on stderr. The archive goes to a temporary file in the cache, is extracted
to a temporary directory and checked there: every variable the release's config implies is
present with its shape, the discriminator's parameter count is the released one (spec 7.3;
the archives' hashes are not published, so the load check is the verification), and
``vocab.txt`` has the vocabulary's size. Only then is the directory renamed into place as
``<cache>/electra_<size>``, with a manifest recording the archive's URL, size and sha256 and
every file's size and sha256: later loads check the files against it (sizes always, hashes
when a file's modification time changed). An interrupted or damaged download leaves
nothing that looks complete; two processes downloading at once both end with the one
directory. Without a network, one line names the cache directory to fill by hand (unzip
the archive there; a directory placed by hand is verified the same way on first use).

A *packaged* release (``Release.packaged``) ships inside electra_tf instead, under
``electra_tf/assets/presets/<name>/``: a TF1 checkpoint stored in float16 (``convert
--dtype=float16``; read back as float32), its ``vocab.txt``, its config and a manifest.
It answers to the same three names, is never downloaded, and each load checks its files
against the manifest (sizes and sha256: a damaged install names itself).
:func:`electra_tf.convert.pack` makes one from a pre-training run.

Tests register a fake release (:func:`register`) and point ``$ELECTRA_TF_PRESET_URL`` at
a local server. This module imports TensorFlow only when a release is verified or read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import sys
import time
import urllib.error
import urllib.request
import uuid
import zipfile
import zlib
from typing import Optional

from electra_tf.io_utils import OUTPUT_RECORD

BASE_URL = "https://storage.googleapis.com/electra-data"
URL_ENV = "ELECTRA_TF_PRESET_URL"
CACHE_ENV = "ELECTRA_TF_PRESETS"
MANIFEST = "electra_tf_manifest.json"
VOCAB_FILE = "vocab.txt"
SIDES = ("discriminator", "generator")
_TIMEOUT = 60.0  # seconds without a byte before a download is given up
_CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class Release:
    """One released archive, ``<name>.zip``.

    Attributes:
      name: the archive's stem and the directory in the cache (``electra_small``).
      hparams: the PretrainingConfig hparams of the whole release (discriminator and
        generator), from which the expected variables and shapes are derived.
      discriminator_params: the discriminator encoder's parameter count (spec 7.3), checked
        after download; None: not checked.
      generator_params: the generator's (without the shared embeddings, with its head).
      description: one line for listings.
      archive_size, archive_sha256: checked when known (Google publishes neither).
      packaged: the directory of a release that ships with electra_tf (never
        downloaded; see :func:`seal`), None for a download.
    """

    name: str
    hparams: dict
    discriminator_params: Optional[int] = None
    generator_params: Optional[int] = None
    description: str = ""
    archive_size: Optional[int] = None
    archive_sha256: Optional[str] = None
    packaged: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Preset:
    """A name resolved: the release and which network (None: the whole release)."""

    release: str
    side: Optional[str]

    @property
    def name(self) -> str:
        return self.release if self.side is None else f"{self.release}_{self.side}"


RELEASES: dict = {}


def register(release: Release) -> Release:
    """Adds (or replaces) a release; its three names resolve from then on."""
    RELEASES[release.name] = release
    return release


register(Release(
    "electra_small", {"model_size": "small", "generator_hidden_size": 1.0, "vocab_size": 30522,
                      "do_lower_case": True},
    discriminator_params=13_483_008, generator_params=9_573_818,
    description="ELECTRA-Small++ (14M parameters, GLUE test 77.4), generator as wide as it"))
register(Release(
    "electra_base", {"model_size": "base", "generator_hidden_size": 1 / 3, "vocab_size": 30522,
                     "do_lower_case": True, "max_seq_length": 512},
    discriminator_params=108_891_648, generator_params=9_903_418,
    description="ELECTRA-Base++ (110M parameters, GLUE test 82.7), generator 1/3 wide"))
register(Release(
    "electra_large", {"model_size": "large", "generator_hidden_size": 0.25, "vocab_size": 30522,
                      "do_lower_case": True, "max_seq_length": 512},
    discriminator_params=334_092_288, generator_params=19_512_378,
    description="ELECTRA-1.75M (335M parameters, GLUE test 85.2), generator 1/4 wide"))


# ---------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------

def lookup(name: str) -> Optional[Preset]:
    """The preset a name means, whatever the spelling, or None.

    ``electra_small_discriminator``, ``electra_small_discriminator_uncased_en`` (keras-hub)
    and ``google/electra-small-discriminator`` (Hugging Face hub) are the same preset.
    """
    key = os.fspath(name).strip().lower()
    key = key.removeprefix("google/").replace("-", "_")
    for suffix in ("_uncased_en", "_cased_en", "_en"):
        key = key.removesuffix(suffix)
    side = None
    for candidate in SIDES:
        if key.endswith("_" + candidate):
            key, side = key[: -len(candidate) - 1], candidate
            break
    return Preset(key, side) if key in RELEASES else None


def known_names() -> list:
    return [f"{r}_{side}" for r in RELEASES for side in SIDES] + list(RELEASES)


def _exists_locally(text: str) -> bool:
    return os.path.exists(text) or os.path.exists(text + ".index")


def find(path_or_name) -> Optional[Preset]:
    """The preset ``path_or_name`` names, or None when it is a path (an existing file or
    directory always wins over a name, and a URL is never a name)."""
    text = os.fspath(path_or_name)
    if not text or "://" in text or _exists_locally(text):
        return None
    return lookup(text)


def looks_like_name(text: str) -> bool:
    """True for what is more likely a model name than a path: one word, or ``org/name``
    whose ``org`` is no directory here (``google/electra-...`` always)."""
    text = os.fspath(text)
    if "://" in text or not text.strip():
        return False
    if re.match(r"^google/electra[-_]", text, re.IGNORECASE):
        return True
    parts = text.split("/")
    if len(parts) == 1:
        return re.fullmatch(r"[\w-]+", text) is not None
    return (len(parts) == 2 and all(parts) and not text.startswith(("/", ".", "~"))
            and not os.path.isdir(parts[0]))


def unknown_name_hint(text: str) -> str:
    """``"; known presets: ..."`` for a missing path that looks like a name, else ``""``."""
    if not looks_like_name(text):
        return ""
    return (f"; known presets: {', '.join(known_names())} (also as keras-hub's "
            "<name>_uncased_en and the hub's google/electra-<size>-<network>)")


# ---------------------------------------------------------------------------
# Where things are
# ---------------------------------------------------------------------------

def cache_dir() -> str:
    """``$ELECTRA_TF_PRESETS``, else ``$XDG_CACHE_HOME/electra_tf/presets``, else
    ``~/.cache/electra_tf/presets``."""
    if os.environ.get(CACHE_ENV):
        return os.path.abspath(os.path.expanduser(os.environ[CACHE_ENV]))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.abspath(os.path.join(base, "electra_tf", "presets"))


def archive_url(release: Release) -> str:
    return f"{os.environ.get(URL_ENV) or BASE_URL}".rstrip("/") + f"/{release.name}.zip"


def release_dir(release: Release) -> str:
    """Where a release is read from: its package directory, or its place in the cache."""
    return release.packaged or os.path.join(cache_dir(), release.name)


PACKAGED_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "presets")


def packaged_dir(name: str, root: str = PACKAGED_ROOT) -> str:
    """The directory of the packaged release ``name`` in this installation."""
    return os.path.join(root, name)


def register_packaged(root: str = PACKAGED_ROOT) -> list:
    """Registers every release packaged under ``root`` (one directory each, named as the
    release, described by its manifest: :func:`seal` writes it); returns their names.

    A directory whose manifest is unreadable is registered all the same, so that using
    its name says what is wrong (:func:`ensure`) instead of "unknown preset".
    """
    try:
        entries = sorted(os.listdir(root))
    except OSError:
        return []
    names = []
    for entry in entries:
        directory = os.path.join(root, entry)
        if entry.startswith(".") or not os.path.isdir(directory):
            continue
        try:
            with open(os.path.join(directory, MANIFEST), encoding="utf-8") as f:
                manifest = json.load(f)
            if not isinstance(manifest, dict):
                raise ValueError("not an object")
        except (OSError, ValueError):
            manifest = {}
        register(Release(entry, dict(manifest.get("hparams") or {}),
                         discriminator_params=manifest.get("discriminator_params"),
                         generator_params=manifest.get("generator_params"),
                         description=str(manifest.get("description", "")),
                         packaged=directory))
        names.append(entry)
    return names


# ---------------------------------------------------------------------------
# What a release holds
# ---------------------------------------------------------------------------

def release_config(release: Release):
    """The PretrainingConfig of the whole release."""
    from electra_tf.config import PretrainingConfig
    return PretrainingConfig.from_preset(release.hparams.get("model_size", "small"),
                                         release.hparams)


def _encoder_shapes(scope: str, embeddings_scope: Optional[str], c, input_width: int) -> dict:
    """``{name: shape}`` of one encoder (spec 7.1): its embeddings when
    ``embeddings_scope`` is given, the projection when ``input_width`` != H, the layers."""
    h, i = c.hidden_size, c.intermediate_size
    shapes = {}
    if embeddings_scope:
        e = c.embedding_size
        shapes.update({
            f"{embeddings_scope}/word_embeddings": [c.vocab_size, e],
            f"{embeddings_scope}/position_embeddings": [c.max_position_embeddings, e],
            f"{embeddings_scope}/token_type_embeddings": [c.type_vocab_size, e],
            f"{embeddings_scope}/LayerNorm/gamma": [e], f"{embeddings_scope}/LayerNorm/beta": [e]})
    if input_width != h:
        shapes.update({f"{scope}/embeddings_project/kernel": [input_width, h],
                       f"{scope}/embeddings_project/bias": [h]})
    for k in range(c.num_hidden_layers):
        p = f"{scope}/encoder/layer_{k}"
        for part in ("query", "key", "value"):
            shapes.update({f"{p}/attention/self/{part}/kernel": [h, h],
                           f"{p}/attention/self/{part}/bias": [h]})
        shapes.update({
            f"{p}/attention/output/dense/kernel": [h, h], f"{p}/attention/output/dense/bias": [h],
            f"{p}/attention/output/LayerNorm/gamma": [h],
            f"{p}/attention/output/LayerNorm/beta": [h],
            f"{p}/intermediate/dense/kernel": [h, i], f"{p}/intermediate/dense/bias": [i],
            f"{p}/output/dense/kernel": [i, h], f"{p}/output/dense/bias": [h],
            f"{p}/output/LayerNorm/gamma": [h], f"{p}/output/LayerNorm/beta": [h]})
    return shapes


def expected_shapes(config) -> dict:
    """``{original name: shape}`` of an ELECTRA release built with ``config`` (spec 7.1,
    7.2): the discriminator with its head and the separate small generator with its
    masked-LM head, tied or untied embeddings (the released layout)."""
    disc = config.discriminator_config()
    e = disc.embedding_size
    shapes = _encoder_shapes("electra", "electra/embeddings", disc, e)
    h = disc.hidden_size
    shapes.update({"discriminator_predictions/dense/kernel": [h, h],
                   "discriminator_predictions/dense/bias": [h],
                   "discriminator_predictions/dense_1/kernel": [h, 1],
                   "discriminator_predictions/dense_1/bias": [1]})
    from electra_tf.pretraining.recipes import Recipe
    recipe = Recipe.for_config(config)
    if recipe.kind == "electra":
        gen = config.generator_config()
        g = gen.hidden_size
        if not recipe.tied_embeddings:
            shapes.update(_encoder_shapes("generator", "generator/embeddings", gen, g))
            width = g
        else:
            shapes.update(_encoder_shapes("generator", None, gen, e))
            width = e
        shapes.update({"generator_predictions/dense/kernel": [g, width],
                       "generator_predictions/dense/bias": [width],
                       "generator_predictions/LayerNorm/gamma": [width],
                       "generator_predictions/LayerNorm/beta": [width],
                       "generator_predictions/output_bias": [disc.vocab_size]})
    return shapes


def parameter_counts(shapes: dict) -> tuple:
    """(discriminator encoder parameters, generator parameters without the shared
    embeddings, with its head): the two columns of spec 7.3."""
    def size(shape):
        n = 1
        for d in shape:
            n *= int(d)
        return n
    disc = sum(size(s) for n, s in shapes.items() if n.startswith("electra/"))
    gen = sum(size(s) for n, s in shapes.items()
              if n.startswith(("generator/", "generator_predictions/")))
    return disc, gen


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------

# What a message tells to do about a damaged release directory: a download is fetched
# again; a packaged release came with the installation.
_REDOWNLOAD = "delete {directory} and run again to download it again"
_REINSTALL = "reinstall electra-tf (pip install --force-reinstall electra-tf, or git checkout " \
    "the directory in a source checkout)"


def _error(message: str):
    from electra_tf.checkpoints import CheckpointError
    return CheckpointError(message)


def _unreachable(name: str, release: Release, url: str, reason: str):
    target = release_dir(release)
    return _error(
        f"cannot download preset {name} from {url}: {reason}; offline, unzip that archive "
        f"into {cache_dir()} by hand (it must give {target}/ holding the TF1 checkpoint, "
        f"<prefix>.index and <prefix>.data-* files, and {VOCAB_FILE}), then run again")


def _reason(error: BaseException) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        error = error.reason if isinstance(error.reason, BaseException) else error
        if not isinstance(error, BaseException):
            return str(error)
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return " ".join(str(text).split())


# ---------------------------------------------------------------------------
# Download and install
# ---------------------------------------------------------------------------

def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class _Progress:
    """One progress line on stderr: bytes, percent, rate and ETA (redrawn on a terminal,
    a line every 10 s otherwise)."""

    def __init__(self, label: str, total: Optional[int], stream=None):
        self.label, self.total = label, total
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = self.last = time.monotonic()
        self.width = 0
        self._write(self._text(0, final=False), final=False)

    def _text(self, got: int, final: bool) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-6)
        rate = got / elapsed
        text = f"downloading {self.label}: {_size(got)}"
        if self.total:
            text += f" of {_size(self.total)} ({100.0 * got / self.total:.0f}%)"
        if got:
            text += f", {_size(rate)}/s"
        if final:
            text += f", done in {_duration(elapsed)}"
        elif self.total and rate > 0 and got:
            text += f", ETA {_duration((self.total - got) / rate)}"
        return text

    def _write(self, text: str, final: bool) -> None:
        try:
            if self.tty:
                self.stream.write("\r" + text.ljust(self.width) + ("\n" if final else ""))
                self.width = len(text)
            else:
                self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed stderr must not stop the download
            pass

    def update(self, got: int) -> None:
        now = time.monotonic()
        if now - self.last >= (0.5 if self.tty else 10.0):
            self.last = now
            self._write(self._text(got, final=False), final=False)

    def done(self, got: int) -> None:
        self._write(self._text(got, final=True), final=True)


def _download(url: str, target: str, name: str, release: Release) -> tuple:
    """Streams ``url`` into ``target``; returns (bytes, sha256 hex)."""
    from electra_tf import __version__
    request = urllib.request.Request(url, headers={"User-Agent": f"electra-tf/{__version__}"})
    try:
        response = urllib.request.urlopen(request, timeout=_TIMEOUT)
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as e:
        raise _unreachable(name, release, url, _reason(e)) from None
    digest, got = hashlib.sha256(), 0
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        progress = _Progress(f"{release.name}.zip for preset {name} from {url}", total)
        with open(target, "wb") as f:
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except (OSError, http.client.HTTPException, socket.timeout) as e:
                    raise _error(
                        f"the download of preset {name} from {url} broke off after {got} "
                        f"bytes ({_reason(e)}); nothing was kept in {cache_dir()}: run again"
                    ) from None
                if not chunk:
                    break
                f.write(chunk)
                digest.update(chunk)
                got += len(chunk)
                progress.update(got)
    if total is not None and got != total:
        raise _error(f"the download of preset {name} from {url} is incomplete ({got} of "
                     f"{total} bytes); nothing was kept in {cache_dir()}: run again")
    progress.done(got)
    return got, digest.hexdigest()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _temporary_prefix(release: Release) -> str:
    return f".{release.name}.download-"


def _remove_stale_temporaries(cache: str, release: Release) -> None:
    """Removes what a killed download of this release left (its process is gone)."""
    prefix = _temporary_prefix(release)
    try:
        names = os.listdir(cache)
    except OSError:
        return
    for entry in names:
        m = re.match(re.escape(prefix) + r"(\d+)-", entry)
        if m and not _pid_alive(int(m.group(1))):
            path = os.path.join(cache, entry)
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.remove(path)
                except OSError:
                    pass


def _extract(archive: str, directory: str, name: str, url: str) -> None:
    """Extracts every member (CRC-checked as it is read); refuses paths that leave it."""
    damaged = (f"the archive of preset {name} downloaded from {url} is damaged "
               "({}); nothing was kept in " + cache_dir() + ": run again")
    try:
        with zipfile.ZipFile(archive) as z:
            for member in z.infolist():
                parts = member.filename.replace("\\", "/").split("/")
                if member.filename.startswith(("/", "\\")) or ".." in parts or \
                        re.match(r"^[A-Za-z]:", member.filename):
                    raise _error(damaged.format(f"member {member.filename!r} points outside "
                                                "the archive"))
            z.extractall(directory)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as e:
        raise _error(damaged.format(_reason(e))) from None


def _release_root(directory: str) -> str:
    """The directory holding the checkpoint: an archive's single top directory, or itself."""
    entries = [e for e in os.listdir(directory) if not e.startswith(("__MACOSX", "."))]
    if len(entries) == 1 and os.path.isdir(os.path.join(directory, entries[0])):
        return os.path.join(directory, entries[0])
    return directory


def _walk_files(directory: str) -> list:
    """Paths relative to ``directory`` of every regular file (the manifest excluded)."""
    found = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for f in sorted(files):
            rel = os.path.relpath(os.path.join(root, f), directory)
            if rel != MANIFEST:
                found.append(rel)
    return found


def _find_prefix(directory: str, name: str) -> str:
    """The checkpoint prefix (relative) of a release directory: its one ``.index`` file
    (the newest step among several)."""
    indexes = [f for f in _walk_files(directory) if f.endswith(".index")]
    if not indexes:
        raise _error(f"{directory} holds no TF1 checkpoint (no .index file) for preset {name}: "
                     f"it is not an unzipped {os.path.basename(directory)}.zip")
    if len(indexes) > 1:
        steps = [(int(m.group(1)) if (m := re.search(r"-(\d+)\.index$", f)) else -1, f)
                 for f in indexes]
        steps.sort()
        if steps[-1][0] == steps[-2][0]:
            raise _error(f"{directory} holds several checkpoints ({', '.join(indexes)}) for "
                         f"preset {name}: keep only the release's")
        indexes = [steps[-1][1]]
    return indexes[0][: -len(".index")]


def _find_vocab(directory: str, prefix: str) -> Optional[str]:
    beside = os.path.join(os.path.dirname(prefix), VOCAB_FILE)
    if os.path.isfile(os.path.join(directory, beside)):
        return beside
    others = [f for f in _walk_files(directory) if os.path.basename(f) == VOCAB_FILE]
    return others[0] if len(others) == 1 else None


def verify_release(directory: str, release: Release, name: str) -> dict:
    """The load check of a release directory; returns ``{"checkpoint", "vocab"}`` (paths
    relative to it) or raises one CheckpointError naming what is wrong."""
    from electra_tf import checkpoints
    from electra_tf.formats import files
    prefix = _find_prefix(directory, name)
    try:
        _, _, shapes = files.open_checkpoint(os.path.join(directory, prefix))
    except checkpoints.CheckpointError as e:
        raise _error(f"the release of preset {name} in {directory} cannot be read: {e}") from None
    expected = expected_shapes(release_config(release))
    problems = []
    missing = [n for n in expected if n not in shapes]
    if missing:
        problems.append(f"{len(missing)} variable(s) missing, e.g. {', '.join(missing[:3])}")
    wrong = [f"{n} {list(shapes[n])} (expected {s})" for n, s in expected.items()
             if n in shapes and list(shapes[n]) != list(s)]
    if wrong:
        problems.append(f"{len(wrong)} of other shape(s): {'; '.join(wrong[:3])}")
    disc, gen = parameter_counts({n: shapes[n] for n in expected if n in shapes})
    if not problems:
        for what, got, want in (("discriminator", disc, release.discriminator_params),
                                ("generator", gen, release.generator_params)):
            if want is not None and got != want:
                problems.append(f"{got:,} {what} parameters, released {want:,}")
    vocab = _find_vocab(directory, prefix)
    if vocab is None:
        problems.append(f"no {VOCAB_FILE}")
    else:
        from electra_tf.tokenization import load_vocab_tokens
        tokens = len(load_vocab_tokens(os.path.join(directory, vocab)))
        size = release_config(release).vocab_size
        if tokens != size:
            problems.append(f"{VOCAB_FILE} has {tokens} tokens, the model {size}")
    if problems:
        raise _error(f"{directory} does not hold the released {release.name} of preset {name} "
                     f"({'; '.join(problems)}): the archive is not Google's or was damaged")
    return {"checkpoint": prefix, "vocab": vocab, "discriminator_params": disc,
            "generator_params": gen}


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_manifest(directory: str, facts: dict, archive: Optional[dict],
                    extra: Optional[dict] = None) -> dict:
    """Writes (and returns) the manifest of a verified release directory; ``extra``
    entries (a packaged release's hparams and story) go in as they are."""
    files = {}
    for rel in _walk_files(directory):
        st = os.stat(os.path.join(directory, rel))
        files[rel] = {"size": st.st_size, "sha256": _sha256(os.path.join(directory, rel)),
                      "mtime_ns": st.st_mtime_ns}
    manifest = {"release": os.path.basename(directory), "archive": archive,
                "checkpoint": facts["checkpoint"], "vocab": facts["vocab"],
                "discriminator_params": facts["discriminator_params"],
                "generator_params": facts["generator_params"], "files": files,
                "verified": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **(extra or {})}
    _write_json_atomic(os.path.join(directory, MANIFEST), manifest)
    return manifest


def _write_json_atomic(path: str, data: dict) -> None:
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp-{uuid.uuid4().hex}")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _read_manifest(directory: str, advice: str = _REDOWNLOAD) -> Optional[dict]:
    path = os.path.join(directory, MANIFEST)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
        if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
            raise ValueError("no files")
        return manifest
    except (OSError, ValueError) as e:
        raise _error(f"{path} is unreadable ({_reason(e)}): "
                     f"{advice.format(directory=directory)}") from None


def _check_cached(directory: str, manifest: dict, name: str, packaged: bool = False) -> None:
    """The files of a cached release are those verified (sizes; hashes when touched). A
    packaged release's files are always hashed (an install sets new times) and its
    manifest is never rewritten."""
    advice = (_REINSTALL if packaged else _REDOWNLOAD).format(directory=directory)
    what = "packaged" if packaged else "cached"
    touched = False
    for rel, info in sorted(manifest["files"].items()):
        path = os.path.join(directory, rel)
        problem = None
        try:
            st = os.stat(path)
        except OSError:
            problem = "missing"
        else:
            if st.st_size != info.get("size"):
                problem = f"{st.st_size} bytes, {info.get('size')} when verified"
            elif packaged or st.st_mtime_ns != info.get("mtime_ns"):
                if _sha256(path) != info.get("sha256"):
                    problem = "its sha256 differs from the verified one"
                else:  # copied or touched, same bytes: remember the new time
                    info["mtime_ns"], touched = st.st_mtime_ns, not packaged
        if problem:
            raise _error(f"the {what} preset {name} in {directory} changed after it was "
                         f"verified ({rel}: {problem}): {advice}")
    if touched:
        try:
            _write_json_atomic(os.path.join(directory, MANIFEST), manifest)
        except OSError:
            pass  # a read-only cache: hashed again next time


def _say(message: str) -> None:
    try:
        print(message, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _install(release: Release, name: str) -> None:
    """Downloads, checks and renames the release into the cache (see the module doc)."""
    cache = cache_dir()
    os.makedirs(cache, exist_ok=True)
    url = archive_url(release)
    _remove_stale_temporaries(cache, release)
    token = f"{_temporary_prefix(release)}{os.getpid()}-{uuid.uuid4().hex[:12]}"
    part = os.path.join(cache, token + ".zip")
    extracted = os.path.join(cache, token)
    try:
        size, sha256 = _download(url, part, name, release)
        if release.archive_size is not None and size != release.archive_size:
            raise _error(f"the archive of preset {name} from {url} has {size} bytes, the "
                         f"release {release.archive_size}; nothing was kept: run again")
        if release.archive_sha256 is not None and sha256 != release.archive_sha256.lower():
            raise _error(f"the archive of preset {name} from {url} has sha256 {sha256}, the "
                         f"release {release.archive_sha256}; nothing was kept: run again")
        os.makedirs(extracted)
        _extract(part, extracted, name, url)
        root = _release_root(extracted)
        facts = verify_release(root, release, name)
        _write_manifest(root, facts, {"url": url, "size": size, "sha256": sha256})
        target = release_dir(release)
        try:
            os.rename(root, target)
        except OSError:
            # Another process renamed its copy in first: that one is complete (it was
            # verified before its rename), use it.
            if _read_manifest(target) is None:
                raise
        else:
            _say(f"preset {name}: {release.name} verified ({facts['discriminator_params']:,} "
                 f"discriminator parameters) and cached in {target}")
    finally:
        if os.path.exists(part):
            os.remove(part)
        shutil.rmtree(extracted, ignore_errors=True)


def ensure(preset: Preset) -> str:
    """The verified release directory of ``preset`` (downloaded first when not cached)."""
    release = RELEASES[preset.release]
    target = release_dir(release)
    if release.packaged:
        return _ensure_packaged(release, preset.name)
    if os.path.isdir(target):
        manifest = _read_manifest(target)
        if manifest is None:  # unzipped here by hand: the same load check, once
            facts = verify_release(target, release, preset.name)
            try:
                _write_manifest(target, facts, None)
            except OSError:
                pass  # a read-only cache: checked again next time
        else:
            _check_cached(target, manifest, preset.name)
        return target
    if os.path.exists(target):
        raise _error(f"{target} is not a directory: remove it, then run again")
    try:
        _install(release, preset.name)
    except OSError as e:  # the cache cannot be written (permissions, a full disk)
        raise _error(f"cannot cache preset {preset.name} in {cache_dir()}: {_reason(e)}"
                     f"{f' ({e.filename})' if getattr(e, 'filename', None) else ''}; set "
                     f"${CACHE_ENV} to a writable directory with room for the archive and "
                     "its contents") from None
    return target


def _ensure_packaged(release: Release, name: str) -> str:
    """The package directory of a packaged release, its files checked against its manifest."""
    target = release.packaged
    advice = _REINSTALL.format(directory=target)
    manifest = _read_manifest(target, _REINSTALL) if os.path.isdir(target) else None
    if manifest is None:
        raise _error(f"preset {name} ships with electra-tf, but {target} "
                     f"{'has no ' + MANIFEST if os.path.isdir(target) else 'is missing'}: "
                     f"{advice}")
    _check_cached(target, manifest, name, packaged=True)
    return target


def resolve(path_or_name) -> str:
    """A local path for ``path_or_name``: itself when it is a path (or no known name), the
    verified release directory (downloaded when needed) when it names a preset."""
    preset = find(path_or_name)
    return os.fspath(path_or_name) if preset is None else ensure(preset)


# ---------------------------------------------------------------------------
# Reading one network of a release
# ---------------------------------------------------------------------------

def _network_hparams(release: Release, side: Optional[str]) -> dict:
    """PretrainingConfig hparams of what a preset gives (every size stated, so that the
    head count of a generator, which its shapes do not tell, is known)."""
    if side is None:
        return dict(release.hparams)
    config = release_config(release)
    net = config.discriminator_config() if side == "discriminator" else config.generator_config()
    return {"model_size": config.model_size, "vocab_size": net.vocab_size,
            "embedding_size": net.embedding_size, "do_lower_case": config.do_lower_case,
            "max_seq_length": config.max_seq_length,
            "model_hparam_overrides": {k: getattr(net, k) for k in (
                "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                "hidden_act", "max_position_embeddings", "type_vocab_size")}}


def read(path_or_name):
    """The weights (:class:`~electra_tf.formats.PretrainedWeights`) a preset name gives:
    the discriminator (format ``tf1``), the generator as an MLM-only network (format
    ``preset``: its names moved) or the whole release (``tf1``)."""
    from electra_tf import checkpoints
    from electra_tf.formats import PretrainedWeights, tf1
    preset = find(path_or_name)
    if preset is None:
        raise _error(f"{path_or_name} is not a preset name")
    directory = ensure(preset)
    release = RELEASES[preset.release]
    manifest = _read_manifest(directory, _REINSTALL if release.packaged else _REDOWNLOAD) or {}
    prefix = os.path.join(directory, manifest.get("checkpoint") or _find_prefix(directory,
                                                                                preset.name))
    weights = tf1.read(prefix)
    vocab = manifest.get("vocab") or _find_vocab(directory, os.path.relpath(prefix, directory))
    return PretrainedWeights(
        values=(dict(weights.values) if preset.side is None
                else checkpoints.network_values(weights.values, preset.side)),
        hparams=_network_hparams(release, preset.side),
        vocab_file=os.path.join(directory, vocab) if vocab else weights.vocab_file,
        source=weights.source, format="preset" if preset.side == "generator" else "tf1",
        global_step=weights.global_step)


# ---------------------------------------------------------------------------
# Packing a release that ships with electra_tf
# ---------------------------------------------------------------------------

def seal(directory: str, release: Release, *, dtype: str, facts: Optional[dict] = None) -> dict:
    """Makes ``directory`` (a TF1 checkpoint with its config and vocab, as ``convert
    --to=tf1`` writes it) the packaged ``release``: verified like a download (every
    variable the release's hparams imply, with its shape; the parameter counts), its
    manifest written with the hparams, description, storage ``dtype`` and ``facts``, so
    that :func:`register_packaged` finds it. :func:`electra_tf.convert.pack` is the whole
    step from a pre-training run.

    Returns:
      the manifest written.
    Raises:
      CheckpointError: the checkpoint is not the release its hparams describe.
    """
    record = os.path.join(directory, OUTPUT_RECORD)
    if os.path.exists(record):  # a dotfile, which package data leaves out: the release
        os.remove(record)       # holds only what an installation has
    verified = verify_release(directory, release, release.name)
    return _write_manifest(directory, verified, None, {
        "release": release.name, "dtype": dtype, "hparams": release.hparams,
        "description": release.description, **(facts or {})})


register_packaged()
