"""Tests for electra_tf.finetuning.tagging (spec 6.6: ``chunk`` and ``conll:<name>`` tasks).

Expected values were worked out by hand from the spec's rules and the fixture files in
``tests/data/tagging`` (see its README for the vocab ids); the CoNLL-2000 test-set facts
(2012 sentences, 47377 words, 23852 chunks, the BIOES tag sets) were counted with an
independent awk script, not with the code under test.
"""

import json
import os
import random

import numpy as np
import pytest

from electra_tf import tokenization
from electra_tf.finetuning import tagging
from electra_tf.finetuning.task import TaskDataError

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data", "tagging")
VOCAB = os.path.join(DATA, "vocab.txt")
CHUNK_DIR = os.path.join(DATA, "chunk")
NER_DIR = os.path.join(DATA, "ner")
CONLL2000 = os.environ.get("ELECTRA_CONLL2000_DIR", os.path.normpath(
    os.path.join(HERE, "..", "..", "shared", "data", "chunk", "conll2000")))

# Fixture vocab ids (tests/data/tagging/README.md).
CLS, SEP, UNK = 2, 3, 1
THE, UN, AFF, ABLE, RUN, NER, WANT, ED, COFFEE, HE, IS = 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
DOT, COMMA, CAFE, UP, GAVE, A, HASH_A, JOHN = 18, 19, 20, 21, 22, 23, 24, 26

# chunk fixture tag ids: sorted BIOES tags of train + dev (the dropped sentence excluded).
CHUNK_TAGS = ["B-ADJP", "B-NP", "E-ADJP", "E-NP", "I-NP", "O", "S-NP", "S-PRT", "S-VP"]


@pytest.fixture(scope="module")
def tokenizer():
    # do_lower_case=False: the tagging tasks must lower-case by themselves.
    return tokenization.FullTokenizer(VOCAB, do_lower_case=False)


def chunk_task(tokenizer, length=32, **kwargs):
    return tagging.ChunkingTask(CHUNK_DIR, tokenizer, length, **kwargs)


# ---------------------------------------------------------------------------
# Tags, spans, BIOES
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("tags, spans", [
    (["B-NP", "I-NP", "E-NP", "S-VP", "S-NP", "O"], [(0, 2, "NP"), (3, 3, "VP"), (4, 4, "NP")]),
    (["B-NP", "I-VP", "O"], [(0, 1, "VP")]),  # type of the last tag, I-X continues B-Y
    (["B-NP", "E-NP", "I-NP"], [(0, 2, "NP")]),  # E does not close by itself
    (["O", "I-NP", "I-NP", "O", "E-VP"], [(1, 2, "NP"), (4, 4, "VP")]),  # opens after O
    (["E-NP", "B-NP"], [(0, 0, "NP"), (1, 1, "NP")]),
    (["I-PER", "I-PER", "B-PER", "I-LOC"], [(0, 1, "PER"), (2, 3, "LOC")]),  # IOB1 merged
    (["O", "O"], []),
    ([], []),
])
def test_spans_electra(tags, spans):
    assert tagging.spans_electra(tags) == spans


@pytest.mark.parametrize("tags, spans", [
    (["I-PER", "I-PER", "B-PER", "I-LOC", "O", "I-ORG"],
     [(0, 1, "PER"), (2, 2, "PER"), (3, 3, "LOC"), (5, 5, "ORG")]),  # IOB1
    (["B-NP", "I-NP", "B-NP", "O", "B-VP", "I-VP"],
     [(0, 1, "NP"), (2, 2, "NP"), (4, 5, "VP")]),  # IOB2
    (["B-NP", "I-VP", "O"], [(0, 0, "NP"), (1, 1, "VP")]),  # a type change splits
    (["B-NP", "E-NP", "I-NP"], [(0, 1, "NP"), (2, 2, "NP")]),  # E closes
    (["S-X", "I-X"], [(0, 0, "X"), (1, 1, "X")]),
    (["U-PER", "B-LOC", "L-LOC", "O"], [(0, 0, "PER"), (1, 2, "LOC")]),  # BILOU
    (["B-I-A", "E-I-A"], [(0, 1, "I-A")]),  # a type may contain '-'
    ([], []),
])
def test_spans_typed(tags, spans):
    assert tagging.spans_typed(tags) == spans


def test_to_bioes():
    iob2 = ["B-NP", "I-NP", "B-NP", "O", "B-VP", "I-VP", "I-VP"]
    bioes = ["B-NP", "E-NP", "S-NP", "O", "B-VP", "I-VP", "E-VP"]
    assert tagging.to_bioes(iob2, "electra") == bioes
    assert tagging.to_bioes(iob2, "typed") == bioes
    assert tagging.to_bioes(bioes, "electra") == bioes  # BIOES is a fixed point
    iob1 = ["I-PER", "I-PER", "B-PER", "I-LOC"]
    assert tagging.to_bioes(iob1, "typed") == ["B-PER", "E-PER", "S-PER", "S-LOC"]
    assert tagging.to_bioes(iob1, "electra") == ["B-PER", "E-PER", "B-LOC", "E-LOC"]
    assert tagging.spans_to_bioes([(1, 1, "X"), (2, 4, "Y")], 6) == [
        "O", "S-X", "B-Y", "I-Y", "E-Y", "O"]


def test_bioes_round_trip():
    # Well-formed BIOES of any non-overlapping spans gives those spans back under both rules.
    rng = random.Random(0)
    for _ in range(300):
        n, spans, i = rng.randint(0, 12), [], 0
        while i < n:
            if rng.random() < 0.3:
                i += 1
                continue
            end = min(n - 1, i + rng.randint(0, 3))
            spans.append((i, end, rng.choice(["NP", "VP", "B-X"])))
            i = end + 1
        tags = tagging.spans_to_bioes(spans, n)
        assert tagging.spans_electra(tags) == spans
        assert tagging.spans_typed(tags) == spans


@pytest.mark.parametrize("tag", ["NP", "B-", "X-NP", "L-PER", "-NP", "o"])
def test_split_tag_rejects(tag):
    with pytest.raises(ValueError, match="malformed tag"):
        tagging.split_tag(tag)


def test_split_tag_aliases():
    assert tagging.split_tag("L-PER", aliases=True) == ("E", "PER")
    assert tagging.split_tag("U-PER", aliases=True) == ("S", "PER")
    assert tagging.split_tag("O") == ("O", None)
    with pytest.raises(ValueError):
        tagging.get_span_function("iob3")


# ---------------------------------------------------------------------------
# Reading and the tag mapping
# ---------------------------------------------------------------------------

def test_read_conll_quirks():
    sentences, dropped = tagging.read_conll(os.path.join(CHUNK_DIR, "dev.txt"))
    assert [s.words for s in sentences] == [["He", "gave", "up", "Café", ","]]
    assert sentences[0].tags == ["B-NP", "B-VP", "B-PRT", "B-NP", "O"]
    assert sentences[0].line == 3
    assert dropped == 3  # "It quickly wanted": no blank line after it
    kept, dropped = tagging.read_conll(os.path.join(CHUNK_DIR, "dev.txt"),
                                       keep_last_unterminated=True)
    assert len(kept) == 2 and kept[1].words == ["It", "quickly", "wanted"] and dropped == 0
    ner, _ = tagging.read_conll(os.path.join(NER_DIR, "train.txt"), column=2)
    assert ner[0].tags == ["B-NP", "I-NP", "B-VP", "B-NP", "B-PP", "B-NP", "O"]


def test_read_conll_final_newline(tmp_path):
    path = tmp_path / "dev.txt"
    for text, n_kept, n_dropped in (("a B-NP\n", 0, 1), ("a B-NP\n\n", 1, 0),
                                    ("a B-NP\n\nb O\nc B-VP", 1, 2), ("", 0, 0)):
        path.write_text(text)
        sentences, dropped = tagging.read_conll(str(path))
        assert (len(sentences), dropped) == (n_kept, n_dropped), text


def test_read_conll_debug_limit(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("w B-NP\n\n" * 105)
    sentences, _ = tagging.read_conll(str(path), max_sentences=100)
    assert len(sentences) == 101  # stops once more than 100 are read, as the original


def test_chunk_examples_and_tag_set(tokenizer):
    task = chunk_task(tokenizer)
    assert task.label_list == CHUNK_TAGS  # train + dev; no test.txt; dropped ADVP absent
    train = task.get_examples("train")
    assert [ex.eid for ex in train] == [0, 1]
    assert train[0].words == ["The", "unaffable", "runner", "wanted", "coffee", "."]
    assert train[0].tags == ["B-NP", "I-NP", "E-NP", "S-VP", "S-NP", "O"]
    assert train[0].labels == [1, 4, 3, 8, 6, 5]
    assert train[1].tags == ["S-NP", "S-VP", "B-ADJP", "E-ADJP", "O"]
    dev = task.get_examples("dev")
    assert len(dev) == 1 and dev[0].tags == ["S-NP", "S-VP", "S-PRT", "S-NP", "O"]
    with pytest.raises(TaskDataError, match="test.txt does not exist"):
        task.get_examples("test")


def test_label_mapping_cache(tokenizer, tmp_path):
    cache = str(tmp_path / "prep")
    task = chunk_task(tokenizer, label_mapping_dir=cache)
    task.get_examples("train")
    path = os.path.join(cache, "chunk_label_mapping.json")
    with open(path) as f:
        assert json.load(f) == {tag: i for i, tag in enumerate(CHUNK_TAGS)}
    debug = chunk_task(tokenizer, label_mapping_dir=cache, debug=True)
    assert debug.label_mapping_path.endswith("debug_chunk_label_mapping.json")
    # An existing mapping is reused as is, even for other data (then a clear error).
    other = tagging.TaggingTask("chunk", NER_DIR, tokenizer, 32, label_mapping_dir=cache)
    assert other.label_list == CHUNK_TAGS
    with pytest.raises(TaskDataError, match="not in .*chunk_label_mapping.json"):
        other.get_examples("train")


def test_bad_data_errors(tokenizer, tmp_path):
    (tmp_path / "train.txt").write_text("a B-NP\nb NP\n\n")
    with pytest.raises(TaskDataError, match="train.txt line 2: malformed tag 'NP'"):
        tagging.ChunkingTask(str(tmp_path), tokenizer, 32).get_examples("train")
    (tmp_path / "train.txt").write_text("a B-NP\nb\n\n")
    with pytest.raises(TaskDataError, match="line 2: no tag column 1"):
        tagging.ConllTaggingTask("ner", str(tmp_path), tokenizer, 32,
                                 column=1).get_examples("train")
    with pytest.raises(TaskDataError, match="none of"):
        _ = tagging.ChunkingTask(str(tmp_path / "nowhere"), tokenizer, 32).label_list
    with pytest.raises(ValueError, match="letters, digits"):
        tagging.ConllTaggingTask("conll:ner", NER_DIR, tokenizer, 32)


# ---------------------------------------------------------------------------
# Featurization
# ---------------------------------------------------------------------------

def test_alignment_forced_lower_case(tokenizer):
    aligner = chunk_task(tokenizer).aligner
    assert aligner.align(["The", "unaffable", "Café", "[SEP]", "\x07"]) == [
        ["[CLS]"], ["the"], ["un", "##aff", "##able"], ["cafe"], ["[UNK]"] * 3, [],
        ["[SEP]"]]
    cased = tagging.WordAligner(tokenizer, lower_case=False)
    assert cased.word_pieces("The") == ["[UNK]"] and cased.word_pieces("the") == ["the"]


def test_featurize_full_sentence(tokenizer):
    task = chunk_task(tokenizer, length=20, task_id=3)
    feats = task.featurize(task.get_examples("train")[0], is_training=True)
    assert len(feats) == 1
    f = feats[0]
    ids = [CLS, THE, UN, AFF, ABLE, RUN, NER, WANT, ED, COFFEE, DOT, SEP]
    assert f["input_ids"] == ids + [0] * 8
    assert f["input_mask"] == [1] * 12 + [0] * 8
    assert f["segment_ids"] == [1] * 12 + [0] * 8  # [QUIRK] segment 1 everywhere
    assert f["chunk_labeled_positions"] == [1, 2, 5, 7, 9, 10] + [0] * 14  # first pieces
    assert f["chunk_labels"] == [1, 4, 3, 8, 6, 5] + [0] * 14
    assert f["chunk_labels_mask"] == [1.0] * 6 + [0.0] * 14
    assert f["chunk_eid"] == 0 and f["task_id"] == 3
    specs = task.feature_specs()
    assert specs == {"chunk_eid": ((), "int64"), "chunk_labels": ((20,), "int64"),
                     "chunk_labels_mask": ((20,), "float32"),
                     "chunk_labeled_positions": ((20,), "int64")}
    for name, (shape, _) in specs.items():
        assert np.shape(f[name]) == shape


@pytest.mark.parametrize("length, n_ids, positions", [
    # 12 tokens, 8 words incl. [CLS]/[SEP]: word k is added only while 8 + ids + 1 <= L.
    (19, 12, [1, 2, 5, 7, 9, 10]),  # the cut before the final [SEP] gives the same ids
    (18, 11, [1, 2, 5, 7, 9]),  # "." no longer fits although 12 tokens would
    (16, 10, [1, 2, 5, 7]),
])
def test_truncation_rule(tokenizer, length, n_ids, positions):
    task = chunk_task(tokenizer, length=length)
    f = task.featurize(task.get_examples("train")[0], False)[0]
    full = [CLS, THE, UN, AFF, ABLE, RUN, NER, WANT, ED, COFFEE, DOT]
    assert f["input_ids"] == full[:n_ids - 1] + [SEP] + [0] * (length - n_ids)
    assert f["input_mask"] == [1] * n_ids + [0] * (length - n_ids)
    assert f["chunk_labeled_positions"] == positions + [0] * (length - len(positions))
    assert f["chunk_labels_mask"] == [1.0] * len(positions) + [0.0] * (length - len(positions))
    assert f["chunk_labels"] == [1, 4, 3, 8, 6, 5] + [0] * (length - 6)  # all word labels


def test_truncation_edge_cases(tokenizer):
    # More words + 2 than L: only the [SEP] is written, no word is labelled.
    tokens, positions = tagging.truncate_and_position([["[CLS]"]] + [["a"]] * 3 + [["[SEP]"]],
                                                      5)
    assert tokens == ["[SEP]"] and positions == []
    task = chunk_task(tokenizer, length=8)
    # One word of 8 pieces overflows L = 8 (the original fails an assertion): cut to L.
    ex = tagging.TaggingExample("chunk", 7, ["aaaaaaaa", "a"], ["S-NP", "S-NP"], [6, 6])
    f = task.featurize(ex, False)[0]
    assert f["input_ids"] == [CLS, A] + [HASH_A] * 5 + [SEP]
    assert f["chunk_labeled_positions"] == [1] + [0] * 7
    assert f["chunk_labels_mask"] == [1.0] + [0.0] * 7
    assert f["chunk_labels"] == [6, 6] + [0] * 6 and f["chunk_eid"] == 7
    # A word without pieces is labelled at the next token.
    ex = tagging.TaggingExample("chunk", 0, ["he", "\x07", "is"], ["O"] * 3, [5] * 3)
    f = chunk_task(tokenizer, length=10).featurize(ex, False)[0]
    assert f["input_ids"][:5] == [CLS, HE, IS, SEP, 0]
    assert f["chunk_labeled_positions"][:4] == [1, 2, 2, 0]


def test_labels_longer_than_l(tokenizer):
    task = chunk_task(tokenizer, length=4)
    ex = tagging.TaggingExample("chunk", 0, ["he"] * 6, ["S-NP"] * 6, [6, 6, 6, 8, 8, 8])
    f = task.featurize(ex, False)[0]
    assert f["input_ids"] == [SEP, 0, 0, 0]
    assert f["chunk_labels"] == [6, 6, 6, 8]  # word labels cut to L
    assert f["chunk_labels_mask"] == [0.0] * 4


# ---------------------------------------------------------------------------
# Generic CoNLL tasks
# ---------------------------------------------------------------------------

def test_conll_task_iob1(tokenizer):
    task = tagging.get_tagging_task("conll:ner", NER_DIR, tokenizer, 16)
    assert isinstance(task, tagging.ConllTaggingTask) and task.name == "ner"
    assert task.label_list == ["B-PER", "E-PER", "O", "S-LOC", "S-MISC", "S-PER"]
    train = task.get_examples("train")
    assert len(train) == 2  # the unterminated last sentence is kept
    assert train[0].tags == ["B-PER", "E-PER", "O", "S-PER", "O", "S-LOC", "O"]
    assert train[1].tags == ["S-PER", "S-PER", "S-LOC"]
    f = task.featurize(train[0], False)[0]
    assert f["input_ids"][:3] == [CLS, JOHN, 27] and f["segment_ids"][:10] == [1] * 8 + [0] * 2
    assert f["ner_labels"][:8] == [0, 1, 2, 5, 2, 3, 2, 0]
    assert set(task.feature_specs()) == {"ner_eid", "ner_labels", "ner_labels_mask",
                                         "ner_labeled_positions"}
    # The chunk reader's choices on the same files: last sentence dropped, IOB1 merged.
    orig = tagging.TaggingTask("ner", NER_DIR, tokenizer, 16)
    assert len(orig.get_examples("train")) == 1


def test_conll_spec_and_factory(tokenizer):
    assert tagging.parse_conll_task_name("conll:ner") == ("ner", {})
    assert tagging.parse_conll_task_name("conll:pos_x:column=2,lower_case=false") == (
        "pos_x", {"column": 2, "lower_case": False})
    for bad in ("ner", "conll:", "conll:1x", "conll:ner:col=2", "conll:ner:column=x",
                "conll:ner:span_rule=iob"):
        with pytest.raises(ValueError):
            tagging.parse_conll_task_name(bad)
    task = tagging.get_tagging_task("conll:np:column=2", NER_DIR, tokenizer, 16)
    assert task.get_examples("train")[0].tags[:3] == ["B-NP", "E-NP", "S-VP"]
    cased = tagging.make_conll_task("ner", lower_case=False)(NER_DIR, tokenizer, 16)
    assert cased.featurize(cased.get_examples("train")[0], False)[0]["input_ids"][:3] == [
        CLS, UNK, UNK]
    assert tagging.is_tagging_task_name("chunk") and tagging.is_tagging_task_name("conll:a")
    assert not tagging.is_tagging_task_name("mnli")
    with pytest.raises(ValueError, match="unknown conll task option"):
        tagging.make_conll_task("ner", colum=3)
    assert isinstance(tagging.get_tagging_task("chunk", CHUNK_DIR, tokenizer, 16),
                      tagging.ChunkingTask)


# ---------------------------------------------------------------------------
# Scorer
# ---------------------------------------------------------------------------

SCORER_TAGS = ["B-NP", "E-NP", "O", "S-NP", "S-VP"]


def _ids(tags):
    return [SCORER_TAGS.index(t) for t in tags]


def _batch(prefix="chunk"):
    gold_a = _ids(["B-NP", "E-NP", "S-VP", "B-NP", "E-NP", "O"])
    pred_a = _ids(["B-NP", "E-NP", "S-NP", "S-NP", "O", "O"])
    gold_b = _ids(["S-NP", "O", "S-VP", "S-NP", "O", "O"])  # index 3 is past the mask
    pred_b = _ids(["S-NP", "O", "O", "S-VP", "O", "O"])
    return {f"{prefix}_predictions": np.array([pred_a, pred_b]),
            f"{prefix}_labels": np.array([gold_a, gold_b]),
            f"{prefix}_labels_mask": np.array([[1.0] * 5 + [0.0], [1.0] * 3 + [0.0] * 3]),
            f"{prefix}_loss": np.array([3.0, 1.5]),
            f"{prefix}_eid": np.array([0, 1])}


def test_span_f1_hand_worked():
    # Sentence A gold {(0,1,NP), (2,2,VP), (3,4,NP)}; predicted (0,1,NP) exact, (2,2,NP)
    # wrong type, (3,3,NP) partial overlap -> 1 correct of 3 predicted, 3 gold.
    # Sentence B (3 words) gold {(0,0,NP), (2,2,VP)}; predicted {(0,0,NP)} -> 1 of 1, 2.
    # Total: correct 2, predicted 4, gold 5 -> P 50, R 40, F1 2*50*40/90.
    scorer = tagging.SpanF1Scorer("chunk", SCORER_TAGS)
    scorer.update(_batch())
    res = scorer.get_results()
    assert (scorer.n_correct, scorer.n_predicted, scorer.n_gold) == (2, 4, 5)
    assert res["precision"] == pytest.approx(50.0)
    assert res["recall"] == pytest.approx(40.0)
    assert res["f1"] == pytest.approx(4000.0 / 90.0)
    assert res["loss"] == pytest.approx(2 * 4.5 / 8)  # [QUIRK] doubled, over 8 words
    single = tagging.SpanF1Scorer("chunk", SCORER_TAGS, double_count_loss=False)
    single.update(_batch())
    assert single.get_results()["loss"] == pytest.approx(4.5 / 8)


def test_span_f1_edge_cases():
    scorer = tagging.SpanF1Scorer("ner", SCORER_TAGS, span_rule="typed")
    assert scorer.get_results() == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    batch = _batch("ner")
    del batch["ner_loss"]
    batch["ner_predictions"] = np.full((2, 6), SCORER_TAGS.index("O"))
    scorer.update(batch)
    assert scorer.get_results() == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    perfect = tagging.SpanF1Scorer("ner", SCORER_TAGS)
    batch["ner_predictions"] = batch["ner_labels"]
    perfect.update(batch)
    assert perfect.get_results()["f1"] == pytest.approx(100.0)
    # The two rules differ on ill-formed predictions: "B-NP S-VP"-like vs "B-NP E-VP".
    electra = tagging.SpanF1Scorer("x", ["B-NP", "E-VP", "E-NP"], span_rule="electra")
    typed = tagging.SpanF1Scorer("x", ["B-NP", "E-VP", "E-NP"], span_rule="typed")
    for s in (electra, typed):
        s.update({"x_predictions": np.array([[0, 1]]), "x_labels": np.array([[0, 2]]),
                  "x_labels_mask": np.array([[1.0, 1.0]])})
    assert (electra.n_predicted, electra.n_correct) == (1, 0)  # one VP span (0, 1)
    assert (typed.n_predicted, typed.n_correct) == (2, 0)
    with pytest.raises(KeyError, match="x_labels_mask"):
        electra.update({"x_predictions": np.zeros((1, 2)), "x_labels": np.zeros((1, 2))})


def test_task_scorer_from_features(tokenizer):
    task = chunk_task(tokenizer, length=16)
    feats = [task.featurize(ex, False)[0] for ex in task.get_examples("train")]
    out = {k: np.array([f[k] for f in feats])
           for k in ("chunk_labels", "chunk_labels_mask")}
    out["chunk_predictions"] = out["chunk_labels"].copy()
    out["chunk_predictions"][0, 4] = CHUNK_TAGS.index("O")  # "coffee" would be cut anyway
    scorer = task.get_scorer("train")
    scorer.update(out)
    # Sentence 1 keeps 4 words at L = 16 ("The unaffable runner wanted": spans NP(0,2) and
    # VP(3,3)); sentence 2 all 5 (NP, VP, ADJP): 5 gold spans, all found.
    assert (scorer.n_gold, scorer.n_predicted, scorer.n_correct) == (5, 5, 5)
    assert scorer.get_results()["f1"] == pytest.approx(100.0)


# ---------------------------------------------------------------------------
# The real CoNLL-2000 test set
# ---------------------------------------------------------------------------

CONLL2000_TEST_TAGS = sorted(
    [p + "-" + t for p in "BES" for t in ("ADJP", "ADVP", "CONJP", "LST", "NP", "PP", "SBAR",
                                           "VP")]
    + ["I-ADJP", "I-ADVP", "I-CONJP", "I-NP", "I-PP", "I-VP", "S-INTJ", "S-PRT", "O"])
# train.txt + test.txt: B-LST and E-LST occur only in test, *-UCP only in train (no S-UCP).
CONLL2000_ALL_TAGS = sorted(
    [p + "-" + t for p in "BE" for t in ("ADJP", "ADVP", "CONJP", "INTJ", "NP", "PP", "PRT",
                                          "SBAR", "UCP", "VP")]
    + ["S-" + t for t in ("ADJP", "ADVP", "CONJP", "INTJ", "LST", "NP", "PP", "PRT", "SBAR",
                          "VP")]
    + ["I-" + t for t in ("ADJP", "ADVP", "CONJP", "INTJ", "NP", "PP", "PRT", "UCP", "VP")]
    + ["B-LST", "E-LST", "O"])


@pytest.mark.skipif(not os.path.isfile(os.path.join(CONLL2000, "test.txt")),
                    reason=f"CoNLL-2000 test.txt not found under {CONLL2000} (set "
                           "ELECTRA_CONLL2000_DIR): real test-set check not run (not a pass)")
def test_real_conll2000_test_set():
    tok = tokenization.FullTokenizer(tokenization.default_vocab_file())
    task = tagging.ChunkingTask(CONLL2000, tok, 256)
    examples = task.get_examples("test")
    assert len(examples) == 2012
    assert sum(len(ex.words) for ex in examples) == 47377
    assert len(CONLL2000_TEST_TAGS) == 33
    assert sorted({t for ex in examples for t in ex.tags}) == CONLL2000_TEST_TAGS
    assert sum(len(tagging.spans_electra(ex.tags)) for ex in examples) == 23852
    has_train = os.path.isfile(os.path.join(CONLL2000, "train.txt"))
    assert len(CONLL2000_ALL_TAGS) == 42
    assert task.label_list == (CONLL2000_ALL_TAGS if has_train else CONLL2000_TEST_TAGS)
    # Every sentence fits at L = 256 (the longest has 78 words); gold scored as predictions.
    feats = [task.featurize(ex, False)[0] for ex in examples]
    assert [sum(f["chunk_labels_mask"]) for f in feats] == [len(ex.words) for ex in examples]
    scorer = task.get_scorer("test")
    labels = np.array([f["chunk_labels"] for f in feats])
    scorer.update({"chunk_predictions": labels, "chunk_labels": labels,
                   "chunk_labels_mask": np.array([f["chunk_labels_mask"] for f in feats])})
    assert scorer.n_gold == 23852
    assert scorer.get_results()["f1"] == pytest.approx(100.0)
