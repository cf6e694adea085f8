"""Tokenizers for electra-tf.

Three tokenizers share one small interface (``encode``, ``encode_batch``,
``tokenize``, ``convert_tokens_to_ids``, ``convert_ids_to_tokens``, ``vocab``,
``inv_vocab``, ``vocab_size``, ``special_ids``):

* :class:`FullTokenizer` -- the reference, pure-Python BERT/ELECTRA WordPiece
  tokenizer (basic tokenization followed by greedy longest-match WordPiece).
* :class:`FastTokenizer` -- the same ids, computed with tensorflow-text's
  ``FastWordpieceTokenizer`` after the BERT text normalisation has been done
  in Python with whole-line string operations (see the class docstring).
* :class:`SentencePieceTokenizer` -- a SentencePiece model.

:func:`load_tokenizer` picks one of them; with no file given it uses the BERT
uncased vocab bundled in ``electra_tf/assets/vocab.txt``.
"""

import logging
import os
import re
import sys
import unicodedata

logger = logging.getLogger(__name__)

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_SPECIAL_KEYS = ("pad", "unk", "cls", "sep", "mask")

# Words with more characters than this become a single [UNK] (as in BERT).
MAX_INPUT_CHARS_PER_WORD = 200

# CJK ideograph ranges that BERT surrounds with spaces (inclusive).
_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)

# ASCII code points BERT treats as punctuation even if Unicode does not.
_ASCII_PUNCT_RANGES = ((33, 47), (58, 64), (91, 96), (123, 126))


def default_vocab_file():
    """Path of the bundled BERT uncased WordPiece vocab (30522 tokens)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "vocab.txt")


def convert_to_unicode(text):
    """Returns `text` as `str`; bytes are decoded as UTF-8, ignoring errors."""
    if isinstance(text, str):
        return text
    if isinstance(text, (bytes, bytearray)):
        return bytes(text).decode("utf-8", "ignore")
    raise TypeError("Expected str or bytes, got %s" % type(text).__name__)


def _read_bytes(path, what):
    """Reads a local or (via tf.io.gfile) remote file, with a clear error."""
    path = os.fspath(path)
    if "://" in path:
        import tensorflow as tf  # pylint: disable=g-import-not-at-top

        if not tf.io.gfile.exists(path):
            raise FileNotFoundError("%s not found: %r" % (what, path))
        with tf.io.gfile.GFile(path, "rb") as f:
            return f.read()
    if not os.path.isfile(path):
        raise FileNotFoundError("%s not found: %r" % (what, path))
    with open(path, "rb") as f:
        return f.read()


def load_vocab_tokens(vocab_file):
    """Reads a vocab file: one token per line, stripped; id = line index."""
    data = _read_bytes(vocab_file, "WordPiece vocab file")
    lines = data.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()  # the newline that ends the last line
    return [line.decode("utf-8", "ignore").strip() for line in lines]


def load_vocab(vocab_file):
    """Returns a dict token -> id (a later duplicate line wins, as in BERT)."""
    return {tok: i for i, tok in enumerate(load_vocab_tokens(vocab_file))}


def special_ids_of_tokens(tokens, source):
    """``{pad, unk, cls, sep, mask}`` ids of a vocabulary's tokens (a later duplicate wins);
    a missing special token is a ValueError naming ``source``."""
    return _special_ids_or_raise({tok: i for i, tok in enumerate(tokens)}, source)


def _special_ids_or_raise(vocab, source):
    missing = [t for t in SPECIAL_TOKENS if t not in vocab]
    if missing:
        raise ValueError(
            "Vocabulary %r is missing the special token(s) %s; a vocab must contain "
            "all of %s." % (source, ", ".join(missing), " ".join(SPECIAL_TOKENS))
        )
    return {k: vocab[t] for k, t in zip(_SPECIAL_KEYS, SPECIAL_TOKENS)}


# ---------------------------------------------------------------------------
# Character classes (BERT definitions, evaluated with Python's unicodedata).
# ---------------------------------------------------------------------------


def _is_whitespace(char):
    if char in (" ", "\t", "\n", "\r"):
        return True
    return unicodedata.category(char) == "Zs"


def _is_control(char):
    if char in ("\t", "\n", "\r"):
        return False
    return unicodedata.category(char).startswith("C")


def _is_punctuation(char):
    cp = ord(char)
    for lo, hi in _ASCII_PUNCT_RANGES:
        if lo <= cp <= hi:
            return True
    return unicodedata.category(char).startswith("P")


def _is_cjk_char(cp):
    for lo, hi in _CJK_RANGES:
        if lo <= cp <= hi:
            return True
    return False


# ---------------------------------------------------------------------------
# Shared interface.
# ---------------------------------------------------------------------------


class _TokenizerBase(object):
    """Vocabulary bookkeeping shared by all tokenizers."""

    vocab = None  # dict token -> id
    inv_vocab = None  # dict id -> token
    vocab_size = 0
    special_ids = None  # dict with keys pad, unk, cls, sep, mask

    def tokenize(self, text):
        raise NotImplementedError

    def encode(self, text):
        """Token ids of one text (no [CLS]/[SEP] added)."""
        return self.encode_batch([text])[0]

    def encode_batch(self, texts):
        """Token ids of every text: list[list[int]]."""
        raise NotImplementedError

    @staticmethod
    def _check_batch(texts):
        if isinstance(texts, (str, bytes)):
            raise TypeError("encode_batch expects a list of texts, not one text")

    def convert_tokens_to_ids(self, tokens):
        return [self.vocab[t] for t in tokens]

    def convert_ids_to_tokens(self, ids):
        return [self.inv_vocab[int(i)] for i in ids]

    @property
    def pad_id(self):
        return self.special_ids["pad"]

    @property
    def unk_id(self):
        return self.special_ids["unk"]

    @property
    def cls_id(self):
        return self.special_ids["cls"]

    @property
    def sep_id(self):
        return self.special_ids["sep"]

    @property
    def mask_id(self):
        return self.special_ids["mask"]


# ---------------------------------------------------------------------------
# Faithful pure-Python tokenizer.
# ---------------------------------------------------------------------------


class BasicTokenizer(object):
    """BERT's basic tokenizer: cleanup, CJK spacing, case/accents, punctuation."""

    def __init__(self, do_lower_case=True, strip_accents=True):
        self.do_lower_case = do_lower_case
        # Accent stripping only ever happens together with lower-casing.
        self.strip_accents = strip_accents
        # Per-character memo of the (pure) character classifications.
        self._clean_cache = {}
        self._punct_cache = {}

    def _clean_char(self, char):
        """'' to drop, ' ' for whitespace, ' c ' for CJK ideographs, else char."""
        try:
            return self._clean_cache[char]
        except KeyError:
            pass
        cp = ord(char)
        if cp == 0 or cp == 0xFFFD or _is_control(char):
            out = ""
        elif _is_whitespace(char):
            out = " "
        elif _is_cjk_char(cp):
            out = " " + char + " "
        else:
            out = char
        self._clean_cache[char] = out
        return out

    def _is_punct(self, char):
        try:
            return self._punct_cache[char]
        except KeyError:
            out = self._punct_cache[char] = _is_punctuation(char)
            return out

    def clean_text(self, text):
        """Steps 2-3: drop NUL/U+FFFD/control chars, map whitespace, space CJK."""
        clean = self._clean_char
        return "".join([clean(c) for c in text])

    def _strip_accents(self, token):
        token = unicodedata.normalize("NFD", token)
        return "".join(c for c in token if unicodedata.category(c) != "Mn")

    def _split_on_punc(self, token):
        out = []
        current = []
        is_punct = self._is_punct
        for char in token:
            if is_punct(char):
                if current:
                    out.append("".join(current))
                    current = []
                out.append(char)
            else:
                current.append(char)
        if current:
            out.append("".join(current))
        return out

    def tokenize(self, text):
        text = self.clean_text(convert_to_unicode(text))
        pieces = []
        for token in text.split():
            if self.do_lower_case:
                token = token.lower()
                if self.strip_accents:
                    token = self._strip_accents(token)
            pieces.extend(self._split_on_punc(token))
        return " ".join(pieces).split()


class WordpieceTokenizer(object):
    """Greedy longest-match-first WordPiece with "##" continuation pieces."""

    def __init__(self, vocab, unk_token="[UNK]", max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD):
        self.vocab = vocab
        self.unk_token = unk_token
        self.max_input_chars_per_word = max_input_chars_per_word
        # No vocab entry is longer than this, so longer candidates cannot match;
        # skipping them does not change the result.
        self._max_piece_len = max([len(t) for t in vocab] + [1])
        self._cache = {}

    def tokenize_word(self, word):
        """WordPiece pieces of one basic token (no whitespace inside)."""
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        n = len(word)
        if n > self.max_input_chars_per_word:
            pieces = [self.unk_token]
        else:
            pieces = []
            start = 0
            while start < n:
                prefix = "##" if start > 0 else ""
                end = min(n, start + self._max_piece_len)
                match = None
                while end > start:
                    candidate = prefix + word[start:end]
                    if candidate in self.vocab:
                        match = candidate
                        break
                    end -= 1
                if match is None:
                    pieces = [self.unk_token]
                    break
                pieces.append(match)
                start = end
        if len(self._cache) < 500000:
            self._cache[word] = pieces
        return pieces

    def tokenize(self, text):
        out = []
        for word in convert_to_unicode(text).split():
            out.extend(self.tokenize_word(word))
        return out


class FullTokenizer(_TokenizerBase):
    """The faithful pure-Python BERT/ELECTRA WordPiece tokenizer.

    Args:
      vocab_file: one token per line; each line is stripped; id = line index.
        Must contain [PAD] [UNK] [CLS] [SEP] [MASK].
      do_lower_case: lower-case the text (uncased models).
      strip_accents: NFD-normalise and drop combining marks (category Mn); only
        applied when `do_lower_case` is on, as in the original code.
    """

    def __init__(self, vocab_file, do_lower_case=True, strip_accents=True, *, tokens=None):
        self.vocab_file = None if vocab_file is None else os.fspath(vocab_file)
        if tokens is None:
            tokens = load_vocab_tokens(self.vocab_file)
        self.vocab = {tok: i for i, tok in enumerate(tokens)}
        self.inv_vocab = dict(enumerate(tokens))
        self.vocab_size = len(tokens)
        self.special_ids = _special_ids_or_raise(self.vocab, self.vocab_file or "the tokens")
        self.do_lower_case = do_lower_case
        self.strip_accents = strip_accents
        self.basic_tokenizer = BasicTokenizer(do_lower_case, strip_accents)
        self.wordpiece_tokenizer = WordpieceTokenizer(self.vocab)

    @classmethod
    def from_tokens(cls, tokens, do_lower_case=True, strip_accents=True):
        """The tokenizer of a vocabulary given as its tokens (id = index), no file."""
        return cls(None, do_lower_case, strip_accents, tokens=list(tokens))

    def tokenize(self, text):
        out = []
        wordpiece = self.wordpiece_tokenizer.tokenize_word
        for word in self.basic_tokenizer.tokenize(text):
            out.extend(wordpiece(word))
        return out

    def encode(self, text):
        vocab = self.vocab
        return [vocab[t] for t in self.tokenize(text)]

    def encode_batch(self, texts):
        return [self.encode(t) for t in texts]


# ---------------------------------------------------------------------------
# Fast tokenizer: Python whole-line normalisation + tensorflow-text WordPiece.
# ---------------------------------------------------------------------------


def _code_point_ranges(pred):
    """Inclusive (lo, hi) ranges of the code points where pred(cp) is true."""
    out = []
    start = None
    for cp in range(sys.maxunicode + 1):
        if pred(cp):
            if start is None:
                start = cp
        elif start is not None:
            out.append((start, cp - 1))
            start = None
    if start is not None:
        out.append((start, sys.maxunicode))
    return out


def _bmp_char_class(ranges):
    """A regex character class for the BMP part of `ranges`."""
    parts = []
    for lo, hi in ranges:
        if lo > 0xFFFF:
            continue
        hi = min(hi, 0xFFFF)
        parts.append("\\u%04x" % lo if lo == hi else "\\u%04x-\\u%04x" % (lo, hi))
    return "[" + "".join(parts) + "]"


def _clean_char_map(cp):
    """`str.translate` value for BERT's cleanup of one code point."""
    char = chr(cp)
    if cp == 0 or cp == 0xFFFD or _is_control(char):
        return None
    if _is_whitespace(char):
        return " "
    return cp


def _strip_mn_char_map(cp):
    return None if unicodedata.category(chr(cp)) == "Mn" else cp


class _CharMap(dict):
    """A `str.translate` table filled lazily from a function of the code point."""

    def __init__(self, fn):
        super(_CharMap, self).__init__()
        self._fn = fn

    def __missing__(self, cp):
        value = self[cp] = self._fn(cp)
        return value


class _Normalizer(object):
    """BERT's character-level normalisation done on whole lines.

    Produces text on which tensorflow-text's whitespace / punctuation / CJK
    pre-tokenization followed by WordPiece gives exactly BERT's result:

    1. cleanup (only when `str.isprintable()` says there may be something to
       clean): drop NUL, U+FFFD and category C* except \\t \\n \\r, map \\t \\n \\r
       and category Zs to " ";
    2. if lower-casing: `str.lower()` on the whole line (the same per-character
       mapping as per token, final-sigma context included, because the
       separators are neither cased nor case-ignorable); then, if stripping
       accents, NFD and removal of category Mn.

    tensorflow-text's own normaliser is not used: it lower-cases with NFKC case
    folding (e.g. mathematical letters, ligatures, full-width forms, "ß" and
    final sigma come out differently) and turns control characters into spaces
    instead of dropping them.
    """

    _tables = None

    def __init__(self, do_lower_case=True, strip_accents=True):
        self.do_lower_case = do_lower_case
        self.strip_accents = strip_accents and do_lower_case
        if _Normalizer._tables is None:
            _Normalizer._tables = self._build_tables()
        tables = _Normalizer._tables
        self._clean_table = tables["clean"]
        self._mn_table = tables["mn"]
        self._mn_bmp_re = tables["mn_bmp_re"]
        self._astral_re = re.compile("[\U00010000-\U0010ffff]")
        # A run of 51+ characters that are neither whitespace, punctuation nor
        # (BMP) CJK ideographs: the only place where a word of > 200 UTF-8 bytes
        # can hide. Astral characters count as word characters (conservative).
        self.long_word_re = re.compile(
            tables["separator_bmp_class"].replace("[", "[^", 1)
            + "{%d}" % (MAX_INPUT_CHARS_PER_WORD // 4 + 1)
        )

    @staticmethod
    def _build_tables():
        """Character tables from Python's unicodedata (built once, ~0.3 s)."""
        category = unicodedata.category
        cats = [category(chr(cp)) for cp in range(sys.maxunicode + 1)]
        mn_ranges = _code_point_ranges(lambda cp: cats[cp] == "Mn")
        separator_ranges = _code_point_ranges(
            lambda cp: (
                cp <= 0xFFFF
                and (  # pylint: disable=g-long-lambda
                    chr(cp).isspace()
                    or cats[cp][0] == "P"
                    or _is_cjk_char(cp)
                    or any(lo <= cp <= hi for lo, hi in _ASCII_PUNCT_RANGES)
                )
            )
        )
        return {
            "clean": _CharMap(_clean_char_map),
            "mn": _CharMap(_strip_mn_char_map),
            "mn_bmp_re": re.compile(_bmp_char_class(mn_ranges)),
            "separator_bmp_class": _bmp_char_class(separator_ranges),
        }

    def __call__(self, text):
        if not isinstance(text, str):
            text = convert_to_unicode(text)
        if not text.isprintable() or "\ufffd" in text:
            text = text.translate(self._clean_table)
        if self.do_lower_case:
            text = text.lower()
            if self.strip_accents and not text.isascii():
                text = unicodedata.normalize("NFD", text)
                if self._astral_re.search(text):
                    text = text.translate(self._mn_table)
                else:
                    text = self._mn_bmp_re.sub("", text)
        return text


class FastTokenizer(_TokenizerBase):
    """Gives the same ids as :class:`FullTokenizer`, several times faster.

    The BERT normalisation (cleanup, lower-casing, accent stripping) is done in
    Python with whole-line C-level string operations (`_Normalizer`); the
    whitespace / punctuation / CJK splitting and the WordPiece matching are done
    by tensorflow-text's `FastWordpieceTokenizer`, whose pre-tokenization
    agrees with BERT's on every code point once that normalisation is applied
    (checked in the tests). The one rule it cannot express -- a word of more
    than 200 *characters* is [UNK], where tensorflow-text counts UTF-8 bytes --
    only matters for non-ASCII words of more than 50 characters: the rare lines
    that may contain one are sent through the faithful tokenizer.
    """

    def __init__(self, vocab_file, do_lower_case=True, strip_accents=True, batch_size=2048):
        # The faithful tokenizer owns the vocab and serves the fallback lines.
        self._full = FullTokenizer(vocab_file, do_lower_case, strip_accents)
        self.vocab_file = self._full.vocab_file
        self.vocab = self._full.vocab
        self.inv_vocab = self._full.inv_vocab
        self.vocab_size = self._full.vocab_size
        self.special_ids = self._full.special_ids
        self.do_lower_case = do_lower_case
        self.strip_accents = strip_accents
        self.batch_size = int(batch_size)
        self._normalize = _Normalizer(do_lower_case, strip_accents)

        import tensorflow as tf  # pylint: disable=g-import-not-at-top
        import tensorflow_text as tf_text  # pylint: disable=g-import-not-at-top

        self._tf = tf
        # FastWordpieceTokenizer takes ids from list positions. Lines that BERT
        # can never produce as a token id (an empty line, the earlier copy of a
        # duplicated token) are replaced by placeholders that contain a space, so
        # they never match a whitespace-free word.
        tokens = [self.inv_vocab[i] for i in range(self.vocab_size)]
        trie_tokens = [
            tok if tok and self.vocab[tok] == i else "[unreachable %d] " % i
            for i, tok in enumerate(tokens)
        ]
        self._tf_tokenizer = tf_text.FastWordpieceTokenizer(
            vocab=trie_tokens,
            suffix_indicator="##",
            # tensorflow-text counts bytes, BERT characters: identical for ASCII;
            # non-ASCII lines that may hold a word of > 200 bytes take the
            # faithful path.
            max_bytes_per_word=MAX_INPUT_CHARS_PER_WORD,
            token_out_type=tf.int32,
            unknown_token="[UNK]",
            no_pretokenization=False,
        )

    def normalize(self, text):
        """The normalised line handed to tensorflow-text (for debugging)."""
        return self._normalize(text)

    def tokenize(self, text):
        return self.convert_ids_to_tokens(self.encode(text))

    def encode_batch(self, texts):
        self._check_batch(texts)
        if not isinstance(texts, (list, tuple)):
            texts = list(texts)
        normalize = self._normalize
        long_word = self._normalize.long_word_re.search
        out = []
        for begin in range(0, len(texts), self.batch_size):
            chunk = [normalize(t) for t in texts[begin : begin + self.batch_size]]
            slow = [i for i, t in enumerate(chunk) if not t.isascii() and long_word(t)]
            ids = self._tf_encode(chunk)
            for i in slow:
                ids[i] = self._full.encode(texts[begin + i])
            out.extend(ids)
        return out

    def _tf_encode(self, lines):
        if not lines:
            return []
        ragged = self._tf_tokenizer.tokenize(self._tf.constant(lines))
        flat = ragged.flat_values.numpy().tolist()
        splits = ragged.row_splits.numpy().tolist()
        return [flat[s:e] for s, e in zip(splits[:-1], splits[1:])]


# ---------------------------------------------------------------------------
# SentencePiece.
# ---------------------------------------------------------------------------


class SentencePieceTokenizer(_TokenizerBase):
    """A SentencePiece model behind the same interface.

    The special ids come from the model's pieces "[PAD]" "[UNK]" "[CLS]"
    "[SEP]" "[MASK]" (user-defined or control symbols, as written by
    ``python -m electra_tf.build_vocab --spm``). If a model has no "[UNK]" /
    "[PAD]" piece, its own unknown piece / padding piece (when it has one) is
    used instead. Any other missing special piece raises a ValueError.
    Lower-casing and other normalisation are whatever the model was trained
    with.
    """

    def __init__(self, model_file):
        import sentencepiece as spm  # pylint: disable=g-import-not-at-top

        self.model_file = os.fspath(model_file)
        proto = _read_bytes(self.model_file, "SentencePiece model file")
        self.sp_model = spm.SentencePieceProcessor()
        try:
            self.sp_model.LoadFromSerializedProto(proto)
        except RuntimeError as e:
            raise ValueError("Cannot load SentencePiece model %r: %s" % (self.model_file, e))
        self.vocab_size = self.sp_model.GetPieceSize()
        self.inv_vocab = {i: self.sp_model.IdToPiece(i) for i in range(self.vocab_size)}
        self.vocab = {piece: i for i, piece in self.inv_vocab.items()}
        fallback = {"unk": self.sp_model.unk_id(), "pad": self.sp_model.pad_id()}
        special_ids = {}
        missing = []
        for key, token in zip(_SPECIAL_KEYS, SPECIAL_TOKENS):
            if token in self.vocab:
                special_ids[key] = self.vocab[token]
            elif fallback.get(key, -1) >= 0:
                special_ids[key] = fallback[key]
            else:
                missing.append(token)
        if missing:
            raise ValueError(
                "SentencePiece model %r has no piece for %s; train it with these "
                "as user-defined or control symbols (python -m "
                "electra_tf.build_vocab --spm does)." % (self.model_file, ", ".join(missing))
            )
        self.special_ids = special_ids

    def tokenize(self, text):
        return self.sp_model.EncodeAsPieces(convert_to_unicode(text))

    def encode(self, text):
        return self.sp_model.EncodeAsIds(convert_to_unicode(text))

    def encode_batch(self, texts):
        self._check_batch(texts)
        texts = [convert_to_unicode(t) for t in texts]
        if not texts:
            return []
        return self.sp_model.Encode(texts, out_type=int)


# ---------------------------------------------------------------------------
# Factory.
# ---------------------------------------------------------------------------


def load_tokenizer(
    vocab_file=None, spm_model=None, do_lower_case=True, strip_accents=True, fast=True
):
    """Returns a tokenizer.

    Args:
      vocab_file: WordPiece vocab; default: the bundled BERT uncased vocab
        (only when `spm_model` is not given either).
      spm_model: a SentencePiece model file (then `do_lower_case` and
        `strip_accents` are ignored: the model's own normaliser applies).
      do_lower_case, strip_accents: BERT basic-tokenizer options.
      fast: use :class:`FastTokenizer` (same ids as :class:`FullTokenizer`);
        falls back to :class:`FullTokenizer`, with a warning, when
        tensorflow-text cannot be imported.
    """
    if vocab_file and spm_model:
        raise ValueError("Give either vocab_file or spm_model, not both.")
    if spm_model:
        return SentencePieceTokenizer(spm_model)
    if not vocab_file:
        vocab_file = default_vocab_file()
    if fast:
        try:
            return FastTokenizer(vocab_file, do_lower_case, strip_accents)
        except ImportError as e:
            logger.warning(
                "tensorflow-text unavailable (%s); using the pure-Python "
                "FullTokenizer (same ids, slower).",
                e,
            )
    return FullTokenizer(vocab_file, do_lower_case, strip_accents)
