"""Tests for the GLUE tasks (electra_tf.finetuning.glue) and metrics (spec 6.4, 6.8).

Expected values were worked out by hand (confusion matrices, ranks, token ids from the line
numbers of ``tests/data/glue/tiny_vocab.txt``), not produced by running the code under test.
The fixtures under ``tests/data/glue/<task>/`` are hand-written (see the README there).
"""

import logging
import math
import os

import numpy as np
import pytest

from electra_tf.finetuning import glue
from electra_tf.finetuning.glue import metrics
from electra_tf.finetuning.task import TaskDataError, shared_feature_specs
from electra_tf.tokenization import FullTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "data", "glue")
TINY_VOCAB = os.path.join(FIXTURES, "tiny_vocab.txt")
REAL_GLUE = "/work/shared/data/glue"

# tiny_vocab.txt ids.
PAD, UNK, CLS, SEP = 0, 1, 2, 3
THE, CAT, SAT, ON, MAT, DOT = 5, 6, 7, 8, 9, 10
A, B, C, D, E, F, G = 11, 12, 13, 14, 15, 16, 17
DOG, RAN, S_PIECE = 19, 20, 21


@pytest.fixture(scope="module")
def tok():
    return FullTokenizer(TINY_VOCAB, do_lower_case=True)


def make(name, tok, max_seq_length=16, data_dir=None, **kwargs):
    return glue.get_glue_task(name, data_dir or os.path.join(FIXTURES, name), tok,
                              max_seq_length, **kwargs)


def fields(examples):
    return [(ex.eid, ex.text_a, ex.text_b, ex.label) for ex in examples]


# ---------------------------------------------------------------------------
# Readers on the hand-written fixtures
# ---------------------------------------------------------------------------

def test_cola_no_header_in_train_dev_and_header_in_test(tok, caplog):
    task = make("cola", tok)
    with caplog.at_level(logging.WARNING, logger="electra_tf"):
        train = task.get_examples("train")
    # Line 3 has only 2 columns: skipped, logged with file and line, counted; eids keep the
    # line index (no header), so they jump over it.
    assert fields(train) == [
        (0, "The cat sat on the mat.", None, "1"),
        (1, "The cat sat mat the on.", None, "0"),
        (3, "A dog ran.", None, "1"),
        (4, "Dog a ran the.", None, "0")]
    assert task.skipped_rows == 1
    msgs = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(msgs) == 1
    assert os.path.join("cola", "train.tsv") in msgs[0] and "line 3" in msgs[0]
    dev = task.get_examples("dev")  # no header, no final newline, leading quote kept
    assert fields(dev) == [(0, "The dog sat on the mat.", None, "1"),
                           (1, "Sat the dog.", None, "0"),
                           (2, "\"Run,\" said the cat.", None, "1")]
    test = task.get_examples("test")  # header skipped, sentence in column 1, dummy label
    assert fields(test) == [(0, "The cat ran.", None, "0"), (1, "Ran cat the the.", None, "0")]
    assert task.skipped_rows == 1


def test_sst_columns_and_quote_char(tok):
    task = make("sst", tok)
    train = task.get_examples("train")
    assert len(train) == 4
    assert fields(train)[0] == (0, "a charming and often affecting journey . ", None, "1")
    assert [ex.label for ex in train] == ["1", "0", "1", "0"]
    dev = task.get_examples("dev")
    assert dev[0].text_a == "\" the cat \" is a good film . "  # no quote processing
    test = task.get_examples("test")
    assert [(ex.eid, ex.label) for ex in test] == [(0, "0"), (1, "0")]
    assert test[0].text_a == "uneasy mishmash of styles and genres ."
    assert task.skipped_rows == 0


def test_mrpc_bom_header_and_columns(tok):
    task = make("mrpc", tok, settings=glue.GlueSettings(double_unordered=False))
    train = task.get_examples("train")
    assert fields(train) == [
        (0, "The cat sat on the mat .", "On the mat , the cat sat .", "1"),
        (1, "A dog ran to the park on Sunday .", "\" The dog did not run , \" she said .", "0"),
        (2, "He said the plan was \" on track . \"", "The plan is on track , he said .", "1")]
    dev = task.get_examples("dev")
    assert [(ex.eid, ex.label) for ex in dev] == [(0, "1"), (1, "0")]
    assert dev[0].text_b == "\" The cat ran , \" he said ."
    test = task.get_examples("test")
    assert fields(test) == [
        (0, "The dog sat on the mat .", "A dog sat on a mat .", "0"),
        (1, "The cat ran home .", "Home ran the cat .", "0")]
    assert task.skipped_rows == 0


def test_qqp_columns_malformed_row_and_test_layout(tok, caplog):
    task = make("qqp", tok)
    train = task.get_examples("train")
    assert fields(train)[1] == (1, "What is a dog?", "What's a dog?", "1")
    assert len(train) == 3  # not doubled: double_unordered is MRPC/STS only
    with caplog.at_level(logging.WARNING, logger="electra_tf"):
        dev = task.get_examples("dev")
    assert [(ex.eid, ex.label) for ex in dev] == [(0, "0"), (2, "1")]
    assert task.skipped_rows == 1
    assert any("line 3" in r.getMessage() for r in caplog.records)
    test = task.get_examples("test")  # id question1 question2
    assert fields(test) == [(0, "Why do cats sit on mats?", "Why do cats like mats?", "0"),
                            (1, "Can a dog run?", "\"Can dogs run\"?", "0")]


def test_mnli_splits_and_column_counts(tok):
    task = make("mnli", tok)
    train = task.get_examples("train")  # 12 columns, label = last (gold_label)
    assert fields(train) == [
        (0, "The cat sat.", "The cat sat on a mat.", "neutral"),
        (1, "A dog ran.", "A dog moved.", "entailment"),
        (2, "The cat ran.", "The cat sat.", "contradiction")]
    dev = task.get_examples("dev")  # reads dev_matched.tsv (16 columns)
    assert task.file_name("dev") == "dev_matched.tsv"
    assert fields(dev) == [(0, "The dog sat.", "The dog sat on a mat.", "neutral"),
                           (1, "A cat ran.", "No cat ran.", "contradiction")]
    assert fields(task.get_examples("dev_matched")) == fields(dev)
    mism = task.get_examples("dev_mismatched")
    assert [ex.label for ex in mism] == ["contradiction", "entailment", "neutral"]
    assert task.get_test_splits() == ["test_matched", "test_mismatched", "diagnostic"]
    tm = task.get_examples("test_matched")  # 10 columns, dummy label = first label
    assert fields(tm) == [(0, "The cat is on the mat.", "A cat is there.", "contradiction"),
                          (1, "Dogs run.", "Dogs sit.", "contradiction")]
    assert fields(task.get_examples("test_mismatched")) == [
        (0, "The cat ran.", "It moved.", "contradiction")]
    diag = task.get_examples("diagnostic")  # texts in columns 1 and 2
    assert fields(diag)[1] == (1, "The dog ran.", "The dog did not run.", "contradiction")
    assert task.skipped_rows == 0
    feats = task.featurize(train[0], True)[0]
    assert feats["mnli_label_ids"] == 2  # "neutral" is third in label order


@pytest.mark.parametrize("name,labels", [
    ("qnli", ("entailment", "not_entailment")),
    ("rte", ("entailment", "not_entailment")),
    ("wnli", ("0", "1"))])
def test_indexed_pair_tasks(tok, name, labels, caplog):
    task = make(name, tok)
    assert task.label_list == list(labels)
    dev = task.get_examples("dev")
    assert len(dev) == 2 and all(ex.label in labels for ex in dev)
    assert dev[0].eid == 0 and dev[0].text_b is not None
    test = task.get_examples("test")
    assert all(ex.label == labels[0] for ex in test)
    assert test[0].text_a and test[0].text_b
    with caplog.at_level(logging.WARNING, logger="electra_tf"):
        train = task.get_examples("train")
    if name == "rte":  # line 4 has the label "maybe": skipped and counted
        assert [ex.eid for ex in train] == [0, 1, 3]
        assert task.skipped_rows == 1
        assert any("line 4" in r.getMessage() and "maybe" in r.getMessage()
                   for r in caplog.records)
    else:
        assert task.skipped_rows == 0
    qnli_first = ("Where did the cat sit?", "The cat sat on the mat.")
    if name == "qnli":
        assert (train[0].text_a, train[0].text_b, train[0].label) == qnli_first + ("entailment",)


def test_sts_columns_scores_and_malformed_score(tok):
    task = make("sts", tok, settings=glue.GlueSettings(double_unordered=False))
    train = task.get_examples("train")
    assert fields(train) == [
        (0, "A plane is taking off.", "An air plane is taking off.", 5.0),
        (1, "A cat sat on the mat.", "A dog ran.", 0.5),
        (2, "The cat ran home.", "A cat ran to its home.", 3.8)]
    dev = task.get_examples("dev")  # line 3 has score "n/a"
    assert [(ex.eid, ex.label) for ex in dev] == [(0, 5.0), (2, 1.2), (3, 4.25)]
    assert task.skipped_rows == 1
    test = task.get_examples("test")  # 9 columns: texts are the last two
    assert fields(test) == [
        (0, "A girl is styling her hair.", "A girl is brushing her hair.", 0.0),
        (1, "The cat sat.", "A cat sat down.", 0.0)]


def test_double_unordered(tok):
    mrpc = make("mrpc", tok).get_examples("train")
    assert len(mrpc) == 6
    assert [ex.eid for ex in mrpc] == [0, 1, 2, 3, 4, 5]
    for orig, swapped in zip(mrpc[:3], mrpc[3:]):
        assert (swapped.text_a, swapped.text_b) == (orig.text_b, orig.text_a)
        assert swapped.label == orig.label and swapped.eid == orig.eid + 3
    assert len(make("mrpc", tok).get_examples("dev")) == 2  # train only
    single = make("mrpc", tok, settings=glue.GlueSettings(double_unordered=False))
    assert len(single.get_examples("train")) == 3
    sts = make("sts", tok).get_examples("train")
    assert len(sts) == 6 and sts[5].text_a == "A cat ran to its home." and sts[5].eid == 5
    assert sts[5].label == 3.8
    assert len(make("cola", tok).get_examples("train")) == 4  # not a doubled task


def test_missing_split_file_names_path_and_layout(tok, tmp_path):
    task = make("rte", tok, data_dir=str(tmp_path / "rte"))
    with pytest.raises(TaskDataError) as err:
        task.get_examples("dev")
    msg = str(err.value)
    assert str(tmp_path / "rte" / "dev.tsv") in msg
    assert "finetuning_data/rte/<split>.tsv" in msg
    mnli = make("mnli", tok, data_dir=str(tmp_path))
    with pytest.raises(TaskDataError, match="dev_matched.tsv"):
        mnli.get_examples("dev")


def test_debug_reads_at_most_100_lines(tok, tmp_path):
    d = tmp_path / "sst"
    d.mkdir()
    rows = ["sentence\tlabel"] + ["the cat %d \t%d" % (i, i % 2) for i in range(150)]
    (d / "train.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert len(make("sst", tok, data_dir=str(d)).get_examples("train")) == 150
    debug = make("sst", tok, data_dir=str(d), debug=True).get_examples("train")
    assert len(debug) == 99  # 100 lines including the header
    assert debug[-1].eid == 98


def test_blank_line_is_a_malformed_row(tok, tmp_path):
    d = tmp_path / "wnli"
    d.mkdir()
    (d / "dev.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\ta\tb\t1\n\n1\tc\td\t0\n",
                               encoding="utf-8")
    task = make("wnli", tok, data_dir=str(d))
    assert [(ex.eid, ex.label) for ex in task.get_examples("dev")] == [(0, "1"), (2, "0")]
    assert task.skipped_rows == 1


# ---------------------------------------------------------------------------
# Featurization (tiny vocab: [CLS] = 2, [SEP] = 3)
# ---------------------------------------------------------------------------

def ex(text_a, text_b=None, label="1", eid=7, task="mrpc"):
    return glue.GlueExample(task_name=task, eid=eid, text_a=text_a, text_b=text_b, label=label)


def test_pair_truncation_longer_first_ties_pop_second(tok):
    task = make("mrpc", tok, max_seq_length=8)
    # 4 + 3 > 5: pop a (4 > 3) -> 3 + 3, tie: pop b -> 3 + 2.
    f = task.featurize(ex("a b c d", "e f g"), True)[0]
    assert f["input_ids"] == [CLS, A, B, C, SEP, E, F, SEP]
    assert f["segment_ids"] == [0, 0, 0, 0, 0, 1, 1, 1]
    assert f["input_mask"] == [1] * 8
    # 3 + 3 (a tie straight away): the second text loses its last token.
    f = task.featurize(ex("a b c", "d e f"), True)[0]
    assert f["input_ids"] == [CLS, A, B, C, SEP, D, E, SEP]
    # A long second text is cut alone: 1 + 6 -> 1 + 4.
    f = task.featurize(ex("a", "b c d e f g"), True)[0]
    assert f["input_ids"] == [CLS, A, SEP, B, C, D, E, SEP]
    assert f["segment_ids"] == [0, 0, 0, 1, 1, 1, 1, 1]


def test_pair_padding_and_features(tok):
    task = make("mrpc", tok, max_seq_length=10, task_id=3)
    f = task.featurize(ex("the cats", "a dog", label="1", eid=42), False)[0]
    assert f["input_ids"] == [CLS, THE, CAT, S_PIECE, SEP, A, DOG, SEP, PAD, PAD]
    assert f["input_mask"] == [1, 1, 1, 1, 1, 1, 1, 1, 0, 0]
    assert f["segment_ids"] == [0, 0, 0, 0, 0, 1, 1, 1, 0, 0]
    assert f["mrpc_eid"] == 42 and f["mrpc_label_ids"] == 1 and f["task_id"] == 3
    specs = dict(shared_feature_specs(10), **task.feature_specs())
    assert set(f) == set(specs)
    assert task.feature_specs() == {"mrpc_eid": ((), "int64"), "mrpc_label_ids": ((), "int64")}


def test_single_text_truncation_padding_and_unknown(tok):
    task = make("cola", tok, max_seq_length=8)
    f = task.featurize(ex("The cat sat.", label="0", task="cola"), True)[0]
    assert f["input_ids"] == [CLS, THE, CAT, SAT, DOT, SEP, PAD, PAD]
    assert f["input_mask"] == [1, 1, 1, 1, 1, 1, 0, 0]
    assert f["segment_ids"] == [0] * 8
    assert f["cola_label_ids"] == 0
    short = make("cola", tok, max_seq_length=5)
    f = short.featurize(ex("a b c d e", task="cola"), True)[0]
    assert f["input_ids"] == [CLS, A, B, C, SEP]  # cut to L - 2
    f = task.featurize(ex("the zebra", task="cola"), True)[0]
    assert f["input_ids"][:4] == [CLS, THE, UNK, SEP]


@pytest.mark.parametrize("text_b", [None, "", "   "])
def test_empty_second_text_is_single_segment(tok, text_b):
    task = make("rte", tok, max_seq_length=8)
    f = task.featurize(ex("a b c d e f", text_b, label="entailment", task="rte"), True)[0]
    # Single-segment layout: truncated to L - 2 = 6, no second [SEP].
    assert f["input_ids"] == [CLS, A, B, C, D, E, F, SEP]
    assert f["segment_ids"] == [0] * 8


def test_regression_targets_and_dummy_labels(tok):
    task = make("sts", tok, max_seq_length=12)
    train = task.get_examples("train")
    f = task.featurize(train[2], True)[0]
    assert f["sts_targets"] == pytest.approx(3.8 / 5.0)
    assert f["sts_eid"] == 2
    assert task.feature_specs() == {"sts_eid": ((), "int64"), "sts_targets": ((), "float32")}
    test_f = task.featurize(task.get_examples("test")[0], False)[0]
    assert test_f["sts_targets"] == 0.0
    cola = make("cola", tok)
    assert cola.featurize(cola.get_examples("test")[1], False)[0]["cola_label_ids"] == 0


def test_featurize_fixture_row_end_to_end(tok):
    task = make("cola", tok, max_seq_length=10)
    f = task.featurize(task.get_examples("train")[0], True)[0]  # "The cat sat on the mat."
    assert f["input_ids"] == [CLS, THE, CAT, SAT, ON, THE, MAT, DOT, SEP, PAD]
    assert f["cola_label_ids"] == 1 and f["cola_eid"] == 0


# ---------------------------------------------------------------------------
# Metrics (hand-worked values)
# ---------------------------------------------------------------------------

# tp = 4 (idx 0, 2, 3, 7), fn = 2 (1, 9), tn = 3 (4, 6, 8), fp = 1 (5).
Y_TRUE = [1, 1, 1, 1, 0, 0, 0, 1, 0, 1]
Y_PRED = [1, 0, 1, 1, 0, 1, 0, 1, 0, 0]


def test_accuracy_and_confusion_matrix():
    assert metrics.accuracy([1, 0, 1, 1], [1, 1, 1, 0]) == 0.5
    assert metrics.accuracy(Y_TRUE, Y_PRED) == pytest.approx(0.7)
    labels, cm = metrics.confusion_matrix(Y_TRUE, Y_PRED)
    assert labels.tolist() == [0, 1]
    assert cm.tolist() == [[3, 1], [2, 4]]
    with pytest.raises(ValueError):
        metrics.accuracy([1, 0], [1])


def test_mcc_hand_worked():
    # (tp tn - fp fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn)) = (12 - 2) / sqrt(5 * 6 * 4 * 5)
    assert metrics.matthews_corrcoef(Y_TRUE, Y_PRED) == pytest.approx(10.0 / math.sqrt(600.0))
    # Three classes: C = [[2,0,0],[1,0,1],[0,1,1]], t = (2,2,2), p = (3,1,2), c = 3, s = 6:
    # (3*6 - 12) / sqrt((36 - 14) (36 - 12)) = 6 / sqrt(528).
    assert metrics.matthews_corrcoef([0, 1, 2, 0, 1, 2], [0, 2, 1, 0, 0, 2]) == pytest.approx(
        6.0 / math.sqrt(528.0))
    assert metrics.matthews_corrcoef([1, 0, 1, 0], [1, 0, 1, 0]) == 1.0
    assert metrics.matthews_corrcoef([1, 0, 1, 0], [0, 1, 0, 1]) == pytest.approx(-1.0)
    # Undefined (constant prediction, or a single true class): 0, as sklearn.
    assert metrics.matthews_corrcoef([1, 0, 1, 0], [1, 1, 1, 1]) == 0.0
    assert metrics.matthews_corrcoef([1, 1, 1], [1, 0, 1]) == 0.0
    assert metrics.matthews_corrcoef(["a", "b", "a"], ["a", "b", "b"]) == pytest.approx(0.5)


def test_binary_f1():
    # p = 4/5, r = 4/6 -> 2 tp / (2 tp + fp + fn) = 8 / 11.
    assert metrics.binary_f1(Y_TRUE, Y_PRED) == pytest.approx(8.0 / 11.0)
    assert metrics.binary_f1([0, 0, 0], [0, 0, 0]) == 0.0
    assert metrics.binary_f1(["n", "y"], ["y", "y"], pos_label="y") == pytest.approx(2.0 / 3.0)


def test_pearson_spearman_mse():
    # xm = (-2,-1,0,1,2), ym = (-2,0,1,0,1): r = 6 / sqrt(10 * 6).
    assert metrics.pearson([1, 2, 3, 4, 5], [2, 4, 5, 4, 5]) == pytest.approx(
        6.0 / math.sqrt(60.0))
    assert math.isnan(metrics.pearson([1, 1, 1], [1, 2, 3]))
    # Ties: x ranks (1, 2.5, 2.5, 4, 5), y ranks (1, 4, 2.5, 2.5, 5): rho = 7.25 / 9.5.
    assert metrics.average_ranks([10, 20, 20, 30, 40]).tolist() == [1, 2.5, 2.5, 4, 5]
    assert metrics.average_ranks([1, 3, 2, 2, 5]).tolist() == [1, 4, 2.5, 2.5, 5]
    assert metrics.spearman([10, 20, 20, 30, 40], [1, 3, 2, 2, 5]) == pytest.approx(
        7.25 / 9.5)
    assert metrics.average_ranks([3, 1, 4, 1, 5, 9, 2, 6, 5]).tolist() == [
        4, 1.5, 5, 1.5, 6.5, 9, 3, 8, 6.5]
    assert metrics.spearman([1, 2, 3, 4], [1, 4, 9, 16]) == pytest.approx(1.0)
    assert metrics.mse([0.2, 0.4], [0.1, 0.7]) == pytest.approx(0.05)


# ---------------------------------------------------------------------------
# Scorers
# ---------------------------------------------------------------------------

def test_accuracy_scorer_x100_and_mean_loss(tok):
    scorer = make("mrpc", tok).get_scorer("dev")
    scorer.update({"mrpc_predictions": np.array([1, 0]), "mrpc_label_ids": np.array([1, 1]),
                   "mrpc_loss": np.array([0.5, 1.5]), "mrpc_eid": np.array([0, 1])})
    scorer.update({"mrpc_predictions": np.array([0, 1]), "mrpc_label_ids": np.array([0, 1]),
                   "mrpc_loss": np.array([0.25, 0.75]), "mrpc_eid": np.array([2, 3])})
    # MRPC reports accuracy only (no F1), as the original.
    assert scorer.get_results() == {"accuracy": pytest.approx(75.0), "loss": pytest.approx(0.75)}
    assert scorer.eids.tolist() == [0, 1, 2, 3]
    no_loss = make("qqp", tok).get_scorer()
    no_loss.update({"qqp_predictions": np.array([1]), "qqp_label_ids": np.array([1])})
    assert no_loss.get_results() == {"accuracy": 100.0}
    with pytest.raises(KeyError, match="qqp_label_ids"):
        no_loss.update({"qqp_predictions": np.array([1])})
    with pytest.raises(ValueError, match="no predictions"):
        make("sst", tok).get_scorer().get_results()


def test_mcc_scorer_x100(tok):
    scorer = make("cola", tok).get_scorer()
    for part in (slice(0, 6), slice(6, None)):
        scorer.update({"cola_predictions": np.array(Y_PRED[part]),
                       "cola_label_ids": np.array(Y_TRUE[part])})
    assert list(scorer.get_results()) == ["mcc"]
    assert scorer.get_results()["mcc"] == pytest.approx(100.0 * 10.0 / math.sqrt(600.0))


def test_regression_scorer(tok):
    scorer = make("sts", tok).get_scorer()
    preds = np.array([1, 2, 3, 4, 5], np.float32) / 5.0
    targets = np.array([2, 4, 5, 4, 5], np.float32) / 5.0
    scorer.update({"sts_predictions": preds, "sts_targets": targets,
                   "sts_loss": (preds - targets) ** 2})
    res = scorer.get_results()
    assert list(res) == ["pearson", "spearman", "mse", "loss"]
    assert res["pearson"] == pytest.approx(100.0 * 6.0 / math.sqrt(60.0), rel=1e-5)
    # Target ranks (1, 2.5, 4.5, 2.5, 4.5), centred (-2, -.5, 1.5, -.5, 1.5) against
    # (-2, -1, 0, 1, 2): rho = 7 / sqrt(10 * 9).
    assert res["spearman"] == pytest.approx(100.0 * 7.0 / math.sqrt(90.0), rel=1e-5)
    # squared errors (0.04, 0.16, 0.16, 0, 0) / 5 -> 0.072 (unscaled, normalised targets).
    assert res["mse"] == pytest.approx(0.072, rel=1e-5)
    assert res["loss"] == pytest.approx(0.072, rel=1e-5)


# ---------------------------------------------------------------------------
# Test-set prediction files
# ---------------------------------------------------------------------------

def test_write_test_predictions_classification(tmp_path):
    path = tmp_path / "out" / "MNLI-m.tsv"
    logits = {1: np.array([0.1, 2.0, -1.0]), 0: np.array([3.0, 0.0, 0.0]),
              2: np.array([0.0, 0.0, 0.5])}
    assert glue.write_test_predictions("mnli", logits, str(path)) == str(path)
    assert path.read_text(encoding="utf-8") == (
        "index\tprediction\n0\tcontradiction\n1\tentailment\n2\tneutral\n")
    assert sorted(os.listdir(path.parent)) == ["MNLI-m.tsv"]  # no temp file left
    glue.write_test_predictions("cola", {0: 1, 1: np.int64(0)}, str(path))  # label ids
    assert path.read_text(encoding="utf-8") == "index\tprediction\n0\t1\n1\t0\n"
    assert glue.LEADERBOARD_FILE_NAMES[("mnli", "test_matched")] == "MNLI-m.tsv"


def test_write_test_predictions_regression_and_failure_keeps_old_file(tmp_path, tok):
    path = tmp_path / "STS-B.tsv"
    task = make("sts", tok)
    glue.write_test_predictions(task, {0: 0.5, 1: np.float32(0.76)}, str(path))
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "index\tprediction"
    assert [line.split("\t")[0] for line in lines[1:]] == ["0", "1"]
    assert float(lines[1].split("\t")[1]) == pytest.approx(2.5)
    assert float(lines[2].split("\t")[1]) == pytest.approx(3.8, rel=1e-6)
    before = path.read_text(encoding="utf-8")
    with pytest.raises(ValueError):
        glue.write_test_predictions("rte", {0: np.array([1.0, 2.0, 3.0])}, str(path))
    assert path.read_text(encoding="utf-8") == before
    assert sorted(os.listdir(tmp_path)) == ["STS-B.tsv"]


# ---------------------------------------------------------------------------
# Real GLUE files (extra; skipped where the shared data is absent)
# ---------------------------------------------------------------------------

def test_real_glue_files_if_present():
    if not os.path.isdir(REAL_GLUE):
        pytest.skip(f"{REAL_GLUE} not present: real-GLUE reader check not run (not a pass)")
    vocab = os.path.join(os.path.dirname(HERE), "electra_tf", "assets", "vocab.txt")
    bert = FullTokenizer(vocab, do_lower_case=True)
    cases = [  # (task, directory, split, rows, label set)
        ("cola", "CoLA", "dev", 1043, {"0", "1"}),
        ("sst", "SST-2", "dev", 872, {"0", "1"}),
        ("mrpc", "MRPC", "dev", 408, {"0", "1"}),
        ("wnli", "WNLI", "dev", 71, {"0", "1"}),
        ("qnli", "QNLI", "dev", 5463, {"entailment", "not_entailment"}),
        ("mnli", "MNLI", "lmbff_k16-42_train_sample", 48,
         {"contradiction", "entailment", "neutral"}),
        ("qqp", "QQP", "lmbff_k16-42_train_sample", 32, {"0", "1"}),
    ]
    for name, directory, split, rows, label_set in cases:
        task = glue.get_glue_task(name, os.path.join(REAL_GLUE, directory), bert, 128)
        examples = task.get_examples(split)
        assert len(examples) == rows, name
        assert task.skipped_rows == 0, name
        assert {e.label for e in examples} == label_set, name
        assert [e.eid for e in examples] == list(range(rows)), name
        for example in examples[:3]:
            f = task.featurize(example, False)[0]
            n = sum(f["input_mask"])
            assert f["input_ids"][0] == 101 and f["input_ids"][n - 1] == 102, name
            assert len(f["input_ids"]) == 128
    mrpc = glue.get_glue_task("mrpc", os.path.join(REAL_GLUE, "MRPC"), bert, 128)
    first = mrpc.get_examples("dev")[0]  # a leading quote survives (no quote char)
    assert first.text_b.startswith("\" The foodservice pie business")
    assert first.label == "1"
    mnli = glue.get_glue_task("mnli", os.path.join(REAL_GLUE, "MNLI"), bert, 128)
    labels = [e.label for e in mnli.get_examples("lmbff_k16-42_train_sample")]
    assert sorted(labels.count(lab) for lab in set(labels)) == [16, 16, 16]
