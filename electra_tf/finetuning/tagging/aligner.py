"""Word -> wordpiece alignment of the tagging tasks (spec 6.6): each word tokenized on its
own, the original's conservative truncation, and the labelled position of every word."""

from __future__ import annotations

import unicodedata
from typing import Dict, List, Sequence, Tuple

from electra_tf import tokenization
from electra_tf.finetuning.task import log

# BERT's character classes, shared with the tokenizer.
_is_control = tokenization._is_control  # pylint: disable=protected-access
_is_whitespace = tokenization._is_whitespace  # pylint: disable=protected-access


class WordAligner:
    """Tokenizes a sentence word by word, as the original's ``tokenize_and_align``.

    Each word is cleaned (NUL, U+FFFD and control characters dropped, whitespace mapped to
    a space; no CJK spacing), lower-cased and accent-stripped when ``lower_case`` (forced
    for ``chunk`` whatever the tokenizer's ``do_lower_case``), split on punctuation and
    WordPiece-tokenized. A word may give no piece (e.g. only control characters).

    Args:
      tokenizer: a WordPiece tokenizer of ``electra_tf.tokenization`` (its ``vocab``).
      lower_case: lower-case and strip accents.
    """

    def __init__(self, tokenizer, lower_case: bool = True):
        if isinstance(tokenizer, tokenization.SentencePieceTokenizer):
            raise TypeError("tagging tasks need a WordPiece vocab (the original's word "
                            "alignment); a SentencePiece tokenizer is not supported")
        self.vocab = tokenizer.vocab
        self.lower_case = lower_case
        self._basic = tokenization.BasicTokenizer(do_lower_case=True, strip_accents=True)
        self._wordpiece = tokenization.WordpieceTokenizer(self.vocab)
        self._cache: Dict[str, List[str]] = {}

    @staticmethod
    def _clean(word: str) -> str:
        out = []
        for char in word:
            cp = ord(char)
            if cp == 0 or cp == 0xFFFD or _is_control(char):
                continue
            out.append(" " if _is_whitespace(char) else char)
        return "".join(out)

    def word_pieces(self, word: str) -> List[str]:
        """The wordpieces of one word (may be empty)."""
        pieces = self._cache.get(word)
        if pieces is None:
            text = self._clean(tokenization.convert_to_unicode(word))
            if self.lower_case:
                text = unicodedata.normalize("NFD", text.lower())
                text = "".join(c for c in text if unicodedata.category(c) != "Mn")
            pieces = []
            for part in self._basic._split_on_punc(text):  # pylint: disable=protected-access
                pieces.extend(self._wordpiece.tokenize(part))
            if len(self._cache) < 200000:
                self._cache[word] = pieces
        return pieces

    def align(self, words: Sequence[str]) -> List[List[str]]:
        """``[[CLS]] + pieces of each word + [[SEP]]``: n + 2 lists. Only these two added
        boundary words map to [CLS]/[SEP]; a data word spelled "[SEP]" is tokenized like any
        other word (the original would treat it as a boundary and shift the labels)."""
        return [["[CLS]"]] + [self.word_pieces(w) for w in words] + [["[SEP]"]]


def truncate_and_position(word_pieces: Sequence[Sequence[str]],
                          max_seq_length: int) -> Tuple[List[str], List[int]]:
    """The original's conservative truncation (spec 6.6 **[QUIRK]**).

    Words (including the [CLS] and [SEP] boundary words) are appended in order; before each
    one, if ``len(word_pieces) + len(tokens) + 1 > L`` a [SEP] is appended and the loop
    stops. The first piece of every real word is its labelled position (a word with no piece
    gets the position of the next token).

    A single word with more pieces than the sentence has words + 2 can still push the
    sequence past L, where the original fails an assertion; then the tokens are cut to
    L - 1 and a [SEP] appended, and the positions >= L - 1 dropped (logged).

    Args:
      word_pieces: n + 2 piece lists from :meth:`WordAligner.align`.
      max_seq_length: L.
    Returns:
      (tokens [<= L], labelled positions [<= n]).
    """
    n_words = len(word_pieces)
    tokens: List[str] = []
    positions: List[int] = []
    last = n_words - 1
    for k, pieces in enumerate(word_pieces):
        if n_words + len(tokens) + 1 > max_seq_length:
            tokens.append("[SEP]")
            break
        if 0 < k < last:
            positions.append(len(tokens))
        tokens.extend(pieces)
    if len(tokens) > max_seq_length:
        log.warning("tagging: a word of many wordpieces overflows max_seq_length=%d (the "
                    "original fails here); cutting to L - 1 tokens + [SEP]", max_seq_length)
        tokens = tokens[:max_seq_length - 1] + ["[SEP]"]
        positions = [p for p in positions if p < max_seq_length - 1]
    return tokens, positions
