"""QA featurization: one QAFeature per document window (doc stride), with its labels and
the bookkeeping post-processing needs (max-context flags, word of each position)."""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Sequence, Tuple

from electra_tf.finetuning.qa.data import QAExample
from electra_tf.finetuning.task import pad_to

# Feature eid = EID_MULTIPLIER * example eid + span index (spec 6.5 step 7).
EID_MULTIPLIER = 1000


@dataclasses.dataclass
class QAFeature:
    """One doc span of one example (several per example when the context is long).

    Lists indexed by position refer to the unpadded ``tokens``:
    ``[CLS] question [SEP] span [SEP]``.

    Attributes:
      eid: ``1000 * example_eid + span_index``.
      tokens: word-pieces, length n <= L.
      input_ids, input_mask, segment_ids: int lists of length L (zero-padded).
      token_to_orig: per position, the index of the context word it came from, -1 for
        [CLS], question, [SEP] positions.
      token_is_max_context: per position, whether this span is the token's max-context span
        (False outside the context).
      doc_span_start, doc_span_length: the span in the example's context word-pieces.
      start_position, end_position: training labels (positions in ``tokens``; 0 = [CLS] for
        unanswerable or out-of-span answers; 0 when not training).
      is_impossible: training label, the example's flag (0 when not training).
    """

    eid: int
    example_eid: int
    span_index: int
    tokens: List[str]
    input_ids: List[int]
    input_mask: List[int]
    segment_ids: List[int]
    token_to_orig: List[int]
    token_is_max_context: List[bool]
    doc_span_start: int
    doc_span_length: int
    start_position: int = 0
    end_position: int = 0
    is_impossible: int = 0

    def to_dict(self, task_name: str) -> Dict[str, Any]:
        """The serialisable features (spec 6.5 step 7), without ``task_id``."""
        return {
            "input_ids": list(self.input_ids),
            "input_mask": list(self.input_mask),
            "segment_ids": list(self.segment_ids),
            task_name + "_eid": self.eid,
            task_name + "_start_positions": self.start_position,
            task_name + "_end_positions": self.end_position,
            task_name + "_is_impossible": self.is_impossible,
        }


def compute_doc_spans(num_tokens: int, max_tokens: int, stride: int) -> List[Tuple[int, int]]:
    """(start, length) windows over ``num_tokens`` context word-pieces.

    Windows start at 0 and advance by ``min(length, stride)`` until the last one reaches the
    end; an empty context gives no window.
    """
    spans = []
    start = 0
    while start < num_tokens:
        length = min(num_tokens - start, max_tokens)
        spans.append((start, length))
        if start + length == num_tokens:
            break
        start += min(length, stride)
    return spans


def is_max_context(spans: Sequence[Tuple[int, int]], span_index: int, position: int) -> bool:
    """Whether ``spans[span_index]`` gives context word-piece ``position`` its best context.

    Score of a span containing the position = min(left, right context) + 0.01 * span length;
    the first span with the highest score wins.
    """
    best_score = None
    best_index = None
    for index, (start, length) in enumerate(spans):
        end = start + length - 1
        if position < start or position > end:
            continue
        score = min(position - start, end - position) + 0.01 * length
        if best_score is None or score > best_score:
            best_score = score
            best_index = index
    return best_index == span_index


def improve_answer_span(doc_pieces: Sequence[str], start: int, end: int,
                        answer_pieces: Sequence[str]) -> Tuple[int, int]:
    """The first sub-span of [start, end] whose pieces equal the answer's tokenization.

    Outer loop: start ascending; inner loop: end descending. No match: (start, end).
    """
    wanted = " ".join(answer_pieces)
    for new_start in range(start, end + 1):
        for new_end in range(end, new_start - 1, -1):
            if " ".join(doc_pieces[new_start:new_end + 1]) == wanted:
                return new_start, new_end
    return start, end


def _wordpieces(tokenizer, texts: Sequence[str]) -> List[List[str]]:
    """Word-pieces of each text (one batched call; same pieces as ``tokenize``)."""
    if not texts:
        return []
    ids = tokenizer.encode_batch(list(texts))
    return [tokenizer.convert_ids_to_tokens(row) for row in ids]


def featurize_example(example: QAExample, tokenizer, max_seq_length: int,
                      max_query_length: int, doc_stride: int,
                      is_training: bool) -> List[QAFeature]:
    """One example -> one QAFeature per doc span (spec 6.5 "Featurization").

    Args:
      example: a QAExample (with word-level answer positions when ``is_training``).
      tokenizer: an ``electra_tf.tokenization`` tokenizer.
      max_seq_length: L.
      max_query_length: question word-pieces kept (the rest is cut).
      doc_stride: the largest step between window starts.
      is_training: compute labels; otherwise all labels are 0.
    """
    specials = tokenizer.special_ids
    cls_token = tokenizer.inv_vocab[specials["cls"]]
    sep_token = tokenizer.inv_vocab[specials["sep"]]
    pieces = _wordpieces(tokenizer, [example.question_text] + list(example.doc_tokens))
    query = pieces[0][:max_query_length]

    piece_to_word: List[int] = []
    word_to_piece: List[int] = []
    doc_pieces: List[str] = []
    for word_index, word_pieces in enumerate(pieces[1:]):
        word_to_piece.append(len(doc_pieces))
        for piece in word_pieces:
            piece_to_word.append(word_index)
            doc_pieces.append(piece)

    tok_start = tok_end = -1
    if is_training and not example.is_impossible:
        if example.start_position is None or example.end_position is None:
            raise ValueError("training example %d has no answer positions" % example.eid)
        tok_start = word_to_piece[example.start_position]
        if example.end_position < len(example.doc_tokens) - 1:
            tok_end = word_to_piece[example.end_position + 1] - 1
        else:
            tok_end = len(doc_pieces) - 1
        answer_pieces = _wordpieces(tokenizer, [example.orig_answer_text or ""])[0]
        tok_start, tok_end = improve_answer_span(doc_pieces, tok_start, tok_end, answer_pieces)

    max_doc_tokens = max_seq_length - len(query) - 3
    if max_doc_tokens <= 0:
        raise ValueError("max_seq_length %d leaves no room for the context after a %d-piece "
                         "question" % (max_seq_length, len(query)))
    spans = compute_doc_spans(len(doc_pieces), max_doc_tokens, doc_stride)
    if len(spans) > EID_MULTIPLIER:
        raise ValueError("example %d has %d doc spans; feature eids (1000 * example + span) "
                         "would collide" % (example.eid, len(spans)))

    features = []
    query_offset = len(query) + 2
    for span_index, (span_start, span_length) in enumerate(spans):
        tokens = [cls_token] + query + [sep_token]
        segment_ids = [0] * len(tokens)
        token_to_orig = [-1] * len(tokens)
        max_context = [False] * len(tokens)
        for i in range(span_start, span_start + span_length):
            tokens.append(doc_pieces[i])
            segment_ids.append(1)
            token_to_orig.append(piece_to_word[i])
            max_context.append(is_max_context(spans, span_index, i))
        tokens.append(sep_token)
        segment_ids.append(1)
        token_to_orig.append(-1)
        max_context.append(False)

        input_ids = tokenizer.convert_tokens_to_ids(tokens)
        start_label = end_label = 0
        if is_training and not example.is_impossible:
            span_end = span_start + span_length - 1
            if span_start <= tok_start and tok_end <= span_end:
                start_label = tok_start - span_start + query_offset
                end_label = tok_end - span_start + query_offset
        features.append(QAFeature(
            eid=EID_MULTIPLIER * example.eid + span_index, example_eid=example.eid,
            span_index=span_index, tokens=tokens,
            input_ids=pad_to(input_ids, max_seq_length),
            input_mask=pad_to([1] * len(input_ids), max_seq_length),
            segment_ids=pad_to(segment_ids, max_seq_length),
            token_to_orig=token_to_orig, token_is_max_context=max_context,
            doc_span_start=span_start, doc_span_length=span_length,
            start_position=start_label, end_position=end_label,
            is_impossible=int(bool(is_training and example.is_impossible))))
    return features

