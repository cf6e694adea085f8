"""The one text-to-features path (electra_tf.preprocessing): the Python and the in-graph
packing give the same features, equal to GLUE fine-tuning's and to BERT's rule written out
below; detection/scoring's encode and the SavedModel's text encoder follow it on texts."""

import random
from pathlib import Path

import numpy as np
import pytest

from electra_tf import detection, preprocessing
from electra_tf.finetuning import glue
from electra_tf.tokenization import FullTokenizer

VOCAB = Path(__file__).resolve().parent / "data" / "detect" / "vocab.txt"  # 64 word-pieces
CLS, SEP = 2, 3
LENGTHS = (3, 4, 5, 8, 16, 17)


def bert_features(ids_a, ids_b, max_seq_length):
    """BERT's convert_single_example, written from its rule: pop from the longer list (the
    second on ties) until a pair fits L - 3; a single list keeps L - 2; pad with zeros."""
    ids_a, ids_b = list(ids_a), list(ids_b) if ids_b else None
    if ids_b:
        while True:
            if len(ids_a) + len(ids_b) <= max_seq_length - 3:
                break
            if len(ids_a) > len(ids_b):
                ids_a.pop()
            else:
                ids_b.pop()
    elif len(ids_a) > max_seq_length - 2:
        ids_a = ids_a[0:max_seq_length - 2]
    tokens, segments = [CLS], [0]
    for i in ids_a:
        tokens.append(i)
        segments.append(0)
    tokens.append(SEP)
    segments.append(0)
    if ids_b:
        for i in ids_b:
            tokens.append(i)
            segments.append(1)
        tokens.append(SEP)
        segments.append(1)
    mask = [1] * len(tokens)
    while len(tokens) < max_seq_length:
        tokens.append(0)
        mask.append(0)
        segments.append(0)
    return {"input_ids": tokens, "input_mask": mask, "segment_ids": segments}


def random_cases(max_seq_length, rng):
    """Pairs of every length combination from 0 to L + 2 pieces (around the limit), single
    texts of 0 to L + 2 pieces; random ids from the vocabulary's non-special rows."""
    def ids(n):
        return [rng.randrange(5, 64) for _ in range(n)]
    lengths = range(max_seq_length + 3)
    pairs = [(ids(n_a), ids(n_b)) for n_a in lengths for n_b in lengths]
    singles = [(ids(n), None) for n in lengths]
    return pairs, singles


@pytest.mark.parametrize("max_seq_length", LENGTHS)
def test_python_packing_equals_bert_rule(max_seq_length):
    pairs, singles = random_cases(max_seq_length, random.Random(max_seq_length))
    for ids_a, ids_b in pairs + singles:
        packed = preprocessing.pack_pair(ids_a, ids_b, max_seq_length, CLS, SEP)
        expected = bert_features(ids_a, ids_b, max_seq_length)
        assert packed.features() == expected, (len(ids_a), len(ids_b or ()))
        # What detection reports: the texts' positions, and how much did not fit.
        n = sum(expected["input_mask"])
        assert packed.text_positions == [p for p in range(n)
                                         if expected["input_ids"][p] not in (CLS, SEP)]
        assert packed.truncated == len(ids_a) + len(ids_b or ()) - len(packed.text_positions)
    # The cases meant to be exercised occur: both texts cut, one cut, ties.
    cut = [preprocessing.pack_pair(a, b, max_seq_length, CLS, SEP) for a, b in pairs]
    assert any(p.kept_a < len(a) and p.kept_b < len(b) for p, (a, b) in zip(cut, pairs))
    assert any(p.kept_a == len(a) and p.kept_b < len(b) for p, (a, b) in zip(cut, pairs))


@pytest.mark.parametrize("max_seq_length", LENGTHS)
def test_python_packing_equals_glue_tokens_to_features(max_seq_length):
    tokenizer = FullTokenizer(str(VOCAB))
    assert (tokenizer.cls_id, tokenizer.sep_id) == (CLS, SEP)
    task = glue.MNLI("", tokenizer, max_seq_length)
    pairs, singles = random_cases(max_seq_length, random.Random(100 + max_seq_length))
    for ids_a, ids_b in pairs + singles:
        tokens_b = tokenizer.convert_ids_to_tokens(ids_b) if ids_b is not None else None
        expected = task.tokens_to_features(tokenizer.convert_ids_to_tokens(ids_a), tokens_b)
        packed = preprocessing.pack_pair(ids_a, ids_b, max_seq_length, CLS, SEP)
        assert packed.features() == expected, (len(ids_a), len(ids_b or ()))


@pytest.mark.parametrize("max_seq_length", LENGTHS)
def test_in_graph_packing_equals_python_packing(max_seq_length):
    import tensorflow as tf
    pairs, singles = random_cases(max_seq_length, random.Random(200 + max_seq_length))

    def ragged(rows):
        return tf.ragged.constant(rows, dtype=tf.int32, ragged_rank=1)

    for cases, with_b in ((pairs, True), (singles, False)):
        features = preprocessing.pack_ragged(
            ragged([a for a, _ in cases]), ragged([b for _, b in cases]) if with_b else None,
            max_seq_length, CLS, SEP)
        for name, value in features.items():
            assert value.dtype == tf.int32 and value.shape == (len(cases), max_seq_length)
            expected = [preprocessing.pack_pair(a, b, max_seq_length, CLS, SEP)
                        .features()[name] for a, b in cases]
            np.testing.assert_array_equal(value.numpy(), expected, name)


def test_in_graph_packing_in_a_traced_function():
    """As in the SavedModel: a tf.function over batches of unknown size and lengths."""
    import tensorflow as tf
    spec = tf.RaggedTensorSpec([None, None], tf.int32, ragged_rank=1)

    @tf.function(input_signature=[spec, spec])
    def pack(ids_a, ids_b):
        return preprocessing.pack_ragged(ids_a, ids_b, 8, CLS, SEP)

    cases = [([5, 6, 7, 8], [9, 10, 11]), ([5], []), ([], [6, 7]), ([5] * 9, [6] * 9)]
    got = pack(tf.ragged.constant([a for a, _ in cases], tf.int32),
               tf.ragged.constant([b for _, b in cases], tf.int32))
    for name in ("input_ids", "input_mask", "segment_ids"):
        np.testing.assert_array_equal(got[name].numpy(),
                                      [bert_features(a, b, 8)[name] for a, b in cases], name)


def test_lengths_that_cannot_hold_the_special_tokens_are_refused():
    with pytest.raises(ValueError, match="< 3 cannot hold a sentence pair"):
        preprocessing.pack_pair([5], [6], 2, CLS, SEP)
    with pytest.raises(ValueError, match="< 2 cannot hold"):
        preprocessing.pack_pair([5], None, 1, CLS, SEP)
    assert preprocessing.pack_pair([5, 6], [], 2, CLS, SEP).input_ids == [CLS, SEP]


def test_texts_detection_finetuning_and_the_savedmodel_encoder_agree():
    """From raw strings: detection/scoring's encode (unpadded), GLUE's featurize and the
    SavedModel's in-graph tokenizer + packing give the same features."""
    import tensorflow as tf
    from electra_tf.serving_text import TextEncoder
    tokenizer = FullTokenizer(str(VOCAB))
    length = 9
    words = [t for t in (tokenizer.inv_vocab[i] for i in range(5, 64))
             if t.isalpha() and not t.startswith("##")]
    rng = random.Random(7)
    texts = [" ".join(rng.choice(words) for _ in range(rng.randrange(0, 12)))
             for _ in range(60)]
    pairs = list(zip(texts[::2], texts[1::2]))
    assert any(a and not b for a, b in pairs)  # an empty second text counts as absent
    task = glue.MNLI("", tokenizer, length)
    encoder = TextEncoder([tokenizer.inv_vocab[i] for i in range(tokenizer.vocab_size)],
                          tokenizer.special_ids, True, length)
    graph = encoder.encode(tf.constant([a for a, _ in pairs]),
                           tf.constant([b for _, b in pairs]))
    for row, (a, b) in enumerate(pairs):
        example = glue.GlueExample(task_name="mnli", eid=row, text_a=a, text_b=b,
                                   label="neutral")
        expected = task.featurize(example, is_training=False)[0]
        encoded = detection.encode(tokenizer, (a, b), length)
        n = len(encoded.input_ids)
        assert encoded.input_ids == expected["input_ids"][:n] and \
            encoded.segment_ids == expected["segment_ids"][:n]
        assert sum(expected["input_mask"]) == n
        for name in ("input_ids", "input_mask", "segment_ids"):
            assert list(graph[name].numpy()[row]) == expected[name], (row, name)
