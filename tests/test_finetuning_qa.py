"""Tests for electra_tf.finetuning.qa (spec 6.5): readers, windows, post-processing, metrics.

Expected values were worked out by hand from the fixtures in tests/data/qa (see its
README) and the bundled BERT uncased vocab; they were not produced by running the code.

Word-pieces of the long Velmora context used below (index: piece):
  0 the, 4-6 ve ##lm ##ora, 10 1852, 68 1889 (69 ","), 93-96 ad ##ela ko ##rin (97 ","),
  122-124 autumn herring festival (125 ","), 135 pieces in all.
Short context: 0-2 ve ##lm ##ora, 3 lies, 4 on, 5 the, 6 northern, 7 shore, 8 of, 9 the,
  10 ardent, 11 sea, 12 ",", 13 facing, 14 the, 15-16 sk ##erry, 17 islands, 18 ".".
With max_query_length=4 and L=18 a feature is [CLS] q1..q4 [SEP] <11 pieces> [SEP]: context
piece i of a span starting at s sits at position i - s + 6.
"""

import json
import math
import os
import shutil

import numpy as np
import pytest

from electra_tf import tokenization
from electra_tf.finetuning import qa
from electra_tf.finetuning.task import TaskDataError

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data", "qa")
SQUAD_DEV_V1 = "/work/shared/data/squad/dev-v1.1.json"
SQUAD_DEV_V2 = "/work/shared/data/squad/dev-v2.0.json"

L = 18
SMALL = dict(max_query_length=4, doc_stride=4)


@pytest.fixture(scope="module")
def tok():
    return tokenization.FullTokenizer(tokenization.default_vocab_file())


def _task(tok, name="squad", tmp=None, **cfg):
    values = dict(SMALL, n_best_size=5, max_answer_length=5, joint_prediction=False)
    values.update(cfg)
    return qa.QATask(name, os.path.join(DATA, name), tok, L,
                     settings=qa.QASettings.defaults(**values),
                     results_dir=None if tmp is None else str(tmp))


def _by_id(examples):
    return {e.qas_id: e for e in examples}


# ---------------------------------------------------------------------------
# Reading.
# ---------------------------------------------------------------------------


def test_split_context_whitespace_and_char_map():
    words, char_to_word = qa.split_context(" ab\tc\u202fd  e\n")
    assert words == ["ab", "c", "d", "e"]
    # " " before the first word -> -1; whitespace maps to the word before it.
    assert char_to_word == [-1, 0, 0, 0, 1, 1, 2, 2, 2, 3, 3]
    # Other Unicode spaces (U+00A0) are not context whitespace.
    assert qa.split_context("a\u00a0b c")[0] == ["a\u00a0b", "c"]


def test_read_squad_train_positions_impossible_and_failures():
    examples, failures = qa.read_squad_examples(
        os.path.join(DATA, "squad", "train.json"), "squad", is_training=True, v2=True)
    # vel-train-6 (wrong answer_start) and vel-train-7 (answer past the end) are skipped.
    assert failures == 2
    assert [e.qas_id for e in examples] == [
        "vel-train-1", "vel-train-2", "vel-train-3", "vel-train-4", "vel-train-5",
        "vel-train-8", "vel-train-9"]
    assert [e.eid for e in examples] == list(range(7))  # running index over kept questions
    ex = _by_id(examples)
    assert (ex["vel-train-1"].start_position, ex["vel-train-1"].end_position) == (8, 8)
    assert ex["vel-train-1"].doc_tokens[8] == "1852"
    assert (ex["vel-train-2"].start_position, ex["vel-train-2"].end_position) == (62, 62)
    assert ex["vel-train-2"].doc_tokens[62] == "1889,"
    assert (ex["vel-train-3"].start_position, ex["vel-train-3"].end_position) == (82, 83)
    imp = ex["vel-train-5"]
    assert imp.is_impossible and (imp.start_position, imp.end_position) == (-1, -1)
    assert imp.orig_answer_text == ""
    # U+202F inside the answer text: still located (whitespace-normalised comparison).
    assert (ex["vel-train-9"].start_position, ex["vel-train-9"].end_position) == (12, 13)
    assert ex["vel-train-9"].doc_tokens[12:14] == ["Skerry", "Islands."]


def test_read_squad_dev_does_not_process_answers(tok):
    task = _task(tok)
    examples = task.get_examples("dev")
    assert len(examples) == 6 and task.skipped_rows == 0
    assert all(e.start_position is None and not e.is_impossible for e in examples)
    assert examples[0].question_text == "When was Velmora founded?"
    with pytest.raises(TaskDataError, match="test.json"):
        task.get_examples("test")


def test_squad_debug_reads_debug_file(tok, tmp_path):
    task = qa.QATask("squadv1", str(tmp_path), tok, L, debug=True)
    with pytest.raises(TaskDataError, match="dev-debug.json"):
        task.get_examples("dev")
    shutil.copy(os.path.join(DATA, "squadv1", "dev.json"), tmp_path / "dev-debug.json")
    assert len(task.get_examples("dev")) == 4


def test_read_mrqa(tok, tmp_path):
    path = os.path.join(DATA, "newsqa", "dev.jsonl")
    examples, failures = qa.read_mrqa_examples(path, "newsqa", is_training=True)
    assert failures == 0
    assert [e.qas_id for e in examples] == ["nq-1", "nq-2", "nq-3"]
    ex = _by_id(examples)
    # Words of the first context: ... 18 "in", 19 "March,", ... 33 "Northwind", 34 "Lines,".
    assert ex["nq-1"].doc_tokens[19] == "March,"
    assert (ex["nq-1"].start_position, ex["nq-1"].end_position) == (19, 19)
    assert (ex["nq-2"].start_position, ex["nq-2"].end_position) == (33, 34)
    assert (ex["nq-3"].start_position, ex["nq-3"].end_position) == (4, 6)
    assert qa.load_mrqa_gold(path) == {"nq-1": ["in March", "March"],
                                       "nq-2": ["Northwind Lines"], "nq-3": ["7 to 2"]}
    # Debug: only the first 11 lines (header + 10 paragraphs).
    para = json.dumps({"context": "x y", "qas": [{"qid": "q", "question": "x?"}]})
    with open(tmp_path / "dev.jsonl", "w") as f:
        f.write(json.dumps({"header": {}}) + "\n" + (para + "\n") * 12)
    debug_task = qa.QATask("newsqa", str(tmp_path), tok, L, debug=True)
    assert len(debug_task.get_examples("dev")) == 10
    assert len(qa.QATask("newsqa", str(tmp_path), tok, L).get_examples("dev")) == 12


# ---------------------------------------------------------------------------
# Windows, labels, max context.
# ---------------------------------------------------------------------------


def test_doc_spans_and_max_context_hand_worked():
    assert qa.compute_doc_spans(10, 4, 3) == [(0, 4), (3, 4), (6, 4)]
    assert qa.compute_doc_spans(10, 4, 8) == [(0, 4), (4, 4), (8, 2)]  # step = min(len, stride)
    assert qa.compute_doc_spans(3, 4, 2) == [(0, 3)]
    assert qa.compute_doc_spans(0, 4, 2) == []
    spans = [(0, 4), (3, 4), (6, 4)]
    # Position 3: scores 0.04 (span 0) and 0.04 (span 1): the first wins.
    assert [qa.is_max_context(spans, i, 3) for i in range(3)] == [True, False, False]
    # Position 4: only span 1 (min(1, 2) + 0.04) and span 2 does not contain it.
    assert [qa.is_max_context(spans, i, 4) for i in range(3)] == [False, True, False]
    assert [qa.is_max_context(spans, i, 7) for i in range(3)] == [False, False, True]


def test_improve_answer_span():
    pieces = ["in", "1889", ",", "the", "town"]
    assert qa.improve_answer_span(pieces, 1, 2, ["1889"]) == (1, 1)
    assert qa.improve_answer_span(pieces, 0, 4, ["the", "town"]) == (3, 4)
    assert qa.improve_answer_span(pieces, 0, 2, ["nothing"]) == (0, 2)


def _train_features(tok):
    examples, _ = qa.read_squad_examples(
        os.path.join(DATA, "squad", "train.json"), "squad", is_training=True, v2=True)
    return {e.qas_id: qa.featurize_example(e, tok, L, 4, 4, True) for e in examples}


def _labels(features):
    return {f.span_index: (f.start_position, f.end_position) for f in features
            if f.start_position or f.end_position}


def test_windows_and_training_labels_on_long_context(tok):
    feats = _train_features(tok)
    f1 = feats["vel-train-1"]
    # 135 pieces, 11 per window, stride 4: windows start at 0, 4, ..., 124 (124 + 11 = 135).
    assert len(f1) == 32
    assert [(f.doc_span_start, f.doc_span_length) for f in f1[:3]] == [(0, 11), (4, 11), (8, 11)]
    assert (f1[-1].doc_span_start, f1[-1].doc_span_length) == (124, 11)
    assert [f.eid for f in f1] == list(range(32))  # example eid 0
    assert [f.eid for f in feats["vel-train-3"]][:2] == [2000, 2001]
    # "1852" (piece 10) is the last context token of window 0 (position 16, then [SEP]).
    assert _labels(f1) == {0: (16, 16), 1: (12, 12), 2: (8, 8)}
    first = f1[0]
    assert first.tokens[16] == "1852" and first.tokens[17] == "[SEP]"
    assert first.tokens[:6] == ["[CLS]", "when", "was", "ve", "##lm", "[SEP]"]  # query cut at 4
    # "1889," -> piece 68 only (improve span drops the comma).
    assert _labels(feats["vel-train-2"]) == {15: (14, 14), 16: (10, 10), 17: (6, 6)}
    # "Adela Korin" = pieces 93..96: window 84 (84..94) holds only half of it -> [CLS].
    assert _labels(feats["vel-train-3"]) == {22: (11, 14), 23: (7, 10)}
    f3 = feats["vel-train-3"][22]
    assert f3.tokens[11:15] == ["ad", "##ela", "ko", "##rin"]
    assert feats["vel-train-3"][21].tokens[15:17] == ["ad", "##ela"]  # cut by the edge
    assert feats["vel-train-3"][21].is_impossible == 0  # out-of-span keeps is_impossible 0
    assert _labels(feats["vel-train-4"]) == {29: (13, 15), 30: (9, 11)}
    # Unanswerable: every window points at [CLS] and is_impossible = 1.
    assert _labels(feats["vel-train-5"]) == {}
    assert all(f.is_impossible == 1 for f in feats["vel-train-5"])
    # Short context: 19 pieces -> windows 0, 4, 8.
    assert _labels(feats["vel-train-8"]) == {1: (12, 13), 2: (8, 9)}
    assert _labels(feats["vel-train-9"]) == {2: (13, 15)}


def test_max_context_and_token_maps(tok):
    feats = _train_features(tok)["vel-train-1"]
    # Every context piece is max-context in exactly one window.
    owner = {}
    for f in feats:
        for pos, flag in enumerate(f.token_is_max_context):
            if flag:
                piece = f.doc_span_start + pos - 6
                assert piece not in owner
                owner[piece] = f.span_index
    assert sorted(owner) == list(range(135))
    # Piece 10: windows 0 (0.11), 1 (min(6, 4) + 0.11) and 2 (min(2, 8) + 0.11) -> window 1.
    assert owner[10] == 1
    first = feats[0]
    assert first.token_to_orig[:6] == [-1] * 6 and first.token_to_orig[17] == -1
    assert first.token_to_orig[6:17] == [0, 1, 2, 3, 4, 4, 4, 5, 6, 7, 8]
    assert first.token_is_max_context[:6] == [False] * 6


def test_feature_dicts_and_specs(tok):
    task = _task(tok)
    assert task.feature_specs() == {"squad_eid": ((), "int64"),
                                    "squad_start_positions": ((), "int64"),
                                    "squad_end_positions": ((), "int64"),
                                    "squad_is_impossible": ((), "int64")}
    example = task.get_examples("dev")[5]
    dicts = task.featurize(example, is_training=False)
    assert len(dicts) == 3
    d = dicts[1]
    assert set(d) == {"input_ids", "input_mask", "segment_ids", "task_id", "squad_eid",
                      "squad_start_positions", "squad_end_positions", "squad_is_impossible"}
    assert d["task_id"] == 0
    other = qa.get_qa_task("squad", task.data_dir, tok, L, settings=task.settings, task_id=2)
    assert other.featurize(example, is_training=False)[0]["task_id"] == 2
    assert d["squad_eid"] == 5001
    assert (d["squad_start_positions"], d["squad_end_positions"], d["squad_is_impossible"]) \
        == (0, 0, 0)
    assert d["input_ids"][:2] == [101, 2006] and d["input_ids"][5] == 102
    assert d["segment_ids"] == [0] * 6 + [1] * 12 and d["input_mask"] == [1] * 18
    # A short feature is zero-padded to L.
    long_l = qa.featurize_example(example, tok, 40, 4, 4, False)
    assert len(long_l) == 1 and len(long_l[0].input_ids) == 40
    assert long_l[0].input_mask == [1] * 26 + [0] * 14
    assert long_l[0].segment_ids == [0] * 6 + [1] * 20 + [0] * 14
    with pytest.raises(ValueError, match="no room"):
        qa.featurize_example(example, tok, 7, 4, 4, False)


# ---------------------------------------------------------------------------
# Post-processing.
# ---------------------------------------------------------------------------


def test_get_final_text(tok):
    basic = tok.basic_tokenizer
    assert qa.get_final_text("steve smith", "Steve Smith's", basic) == "Steve Smith"
    assert qa.get_final_text("korin", "Korin,", basic) == "Korin"
    assert qa.get_final_text("1889", "1889,", basic) == "1889"
    assert qa.get_final_text("zzz", "Korin,", basic) == "Korin,"  # not found
    # Accents are stripped one character for one: the alignment still works.
    assert qa.get_final_text("cafe", "Café,", basic) == "Café"
    # A dropped control character (U+200B) changes the length: the original words.
    assert qa.get_final_text("korin", "Ko\u200brin,", basic) == "Ko\u200brin,"


def _short_example_features(tok):
    task = _task(tok)
    example = task.get_examples("dev")[5]  # "On which sea does Velmora lie?" (short context)
    return example, qa.featurize_example(example, tok, L, 4, 4, False)


def _logits(**values):
    out = np.full([L], -1.0, np.float32)
    for pos, v in values.items():
        out[int(pos[1:])] = v
    return out


def test_postprocess_separate_logits(tok):
    example, feats = _short_example_features(tok)
    assert [f.eid for f in feats] == [5000, 5001, 5002]
    results = {
        5000: {"start_logits": _logits(), "end_logits": _logits()},
        # Starts 0 ([CLS]) and 2 (question) are excluded, end 17 is the final [SEP];
        # (12, 9) and (10, 9) end before they start; (10, 13) is longer than 3;
        # (12, 13) = "ardent sea" scores 8.
        5001: {"start_logits": _logits(p0=9, p2=8, p10=6, p12=4),
               "end_logits": _logits(p17=7, p9=5, p13=4)},
        # (8, 9) = "ardent sea" again but piece 10 is not max-context here (excluded);
        # (13, 15) = "sk ##erry islands" scores 6.
        5002: {"start_logits": _logits(p8=10, p13=3), "end_logits": _logits(p9=10, p15=3)},
    }
    cfg = qa.QASettings.defaults(n_best_size=5, max_answer_length=3, joint_prediction=False)
    text, odds, nbest = qa.postprocess_example(example, feats, results, cfg, False,
                                               tok.basic_tokenizer)
    assert text == "Ardent Sea" and odds is None
    assert [e.text for e in nbest] == ["Ardent Sea", "Skerry Islands"]
    assert [(e.start_logit, e.end_logit) for e in nbest] == [(4.0, 4.0), (3.0, 3.0)]
    assert nbest[0].probability == pytest.approx(1 / (1 + math.exp(-2)))
    # v2 without the answerable classifier: null = min over features of start[0] + end[0]
    # = min(-2, 9 - 1, -2) = -2; null odds = -2 - 4 - 4.
    cfg2 = qa.QASettings.defaults(n_best_size=5, max_answer_length=3,
                                  joint_prediction=False, answerable_classifier=False)
    text, odds, _ = qa.postprocess_example(example, feats, results, cfg2, True,
                                           tok.basic_tokenizer)
    assert (text, odds) == ("Ardent Sea", -10.0)
    # max_answer_length 1: only single pieces survive -> nothing here -> "empty".
    cfg3 = qa.QASettings.defaults(n_best_size=5, max_answer_length=1, joint_prediction=False)
    text, _, nbest = qa.postprocess_example(example, feats, results, cfg3, False,
                                            tok.basic_tokenizer)
    assert text == "empty" and (nbest[0].start_logit, nbest[0].end_logit) == (0.0, 0.0)


def test_postprocess_joint_beam_and_null_score(tok):
    example, feats = _short_example_features(tok)

    def res(starts, start_lp, ends, end_lp, answerable):
        return {"start_top_index": np.array(starts), "start_top_log_probs": np.array(start_lp),
                "end_top_index": np.array(ends), "end_top_log_probs": np.array(end_lp),
                "answerable_logit": np.float32(answerable)}

    results = {
        # 0 is [CLS]; 20 >= number of tokens.
        5000: res([0, 20], [-0.5, -0.6], [[0, 0], [0, 0]], [[0.0, 0.0], [0.0, 0.0]], 1.5),
        # (12, 13) -0.3 "Ardent Sea"; (12, 11) end < start; (10, 13) too long;
        # (10, 11) -2.6 "of the" (cut by n_best_size 3).
        5001: res([12, 10], [-0.1, -2.5], [[13, 11], [13, 11]], [[-0.2, -1.0], [-0.05, -0.1]],
                  -0.5),
        # (8, *) not max-context; (13, 15) -1.2 "Skerry Islands"; (13, 14) -1.3 "Skerry".
        5002: res([8, 13], [-0.01, -1.0], [[9, 10], [15, 14]], [[-0.01, -0.5], [-0.2, -0.3]],
                  3.0),
    }
    cfg = qa.QASettings.defaults(n_best_size=3, max_answer_length=3, joint_prediction=True,
                                 beam_size=2)
    text, odds, nbest = qa.postprocess_example(example, feats, results, cfg, True,
                                               tok.basic_tokenizer)
    assert [e.text for e in nbest] == ["Ardent Sea", "Skerry Islands", "Skerry"]  # capped at 3
    assert nbest[1].start_logit + nbest[1].end_logit == pytest.approx(-1.2)
    # Null odds = the minimum answerable logit over the three windows.
    assert text == "Ardent Sea" and odds == pytest.approx(-0.5)
    # v1: best text, no null odds.
    assert qa.postprocess_example(example, feats, results, cfg, False,
                                  tok.basic_tokenizer)[:2] == ("Ardent Sea", None)
    # A feature without outputs is ignored; its null score does not count.
    partial = {5002: results[5002]}
    text, odds, _ = qa.postprocess_example(example, feats, partial, cfg, True,
                                           tok.basic_tokenizer)
    assert (text, odds) == ("Skerry Islands", 3.0)


def _outputs_for(task, split, targets, answerable=None):
    """Non-joint outputs for every eval feature: logits -1, +5 at the first max-context
    occurrence of each target piece sequence; answerable logit per question (default -5)."""
    examples, features = task.eval_data(split)
    rows = []
    for example in examples:
        target = targets.get(example.qas_id)
        placed = target is None
        for f in features[example.eid]:
            start, end = np.full([L], -1.0), np.full([L], -1.0)
            if not placed:
                for p in range(len(f.tokens)):
                    if (f.token_to_orig[p] >= 0 and f.token_is_max_context[p]
                            and f.tokens[p:p + len(target)] == target):
                        start[p], end[p + len(target) - 1] = 5.0, 5.0
                        placed = True
                        break
            rows.append((f.eid, start, end, (answerable or {}).get(example.qas_id, -5.0)))
        assert placed, example.qas_id
    return {"squad_eid": np.array([r[0] for r in rows]),
            "squad_start_logits": np.stack([r[1] for r in rows]),
            "squad_end_logits": np.stack([r[2] for r in rows]),
            "squad_answerable_logit": np.array([r[3] for r in rows])}


V2_TARGETS = {"vel-dev-1": ["1852"], "vel-dev-2": ["ko", "##rin"],
              "vel-dev-3": ["autumn", "herring", "festival"], "vel-dev-6": ["ardent", "sea"]}
V2_NULL = {"vel-dev-1": -6.0, "vel-dev-2": -4.0, "vel-dev-3": -3.0, "vel-dev-4": 3.0,
           "vel-dev-5": -3.5, "vel-dev-6": -5.0}
F1_KORIN = 2 / 3  # "Korin" vs "Adela Korin": p = 1, r = 1/2
F1_FESTIVAL = 6 / 7  # vs "its autumn herring festival": p = 1, r = 3/4


def test_v2_scorer_end_to_end(tok, tmp_path):
    task = _task(tok, "squad", tmp_path)
    scorer = task.get_scorer("dev")
    outputs = _outputs_for(task, "dev", V2_TARGETS, V2_NULL)
    half = len(outputs["squad_eid"]) // 2
    scorer.update({k: v[:half] for k, v in outputs.items()})
    scorer.update({k[len("squad_"):]: v[half:] for k, v in outputs.items()})  # unprefixed
    metrics = scorer.get_results()
    assert scorer.predictions["vel-dev-2"] == "Korin"
    assert scorer.predictions["vel-dev-4"] == "empty"  # no candidate; null odds decide
    assert dict(scorer.null_odds) == V2_NULL
    # Threshold -2.75: vel-dev-4 predicted unanswerable (right), vel-dev-5 answered (wrong).
    f1_has = (1 + F1_KORIN + F1_FESTIVAL + 1) / 4
    expected = {
        "exact": 50.0, "f1": 100 * (4 * f1_has + 1) / 6, "total": 6.0,
        "HasAns_exact": 50.0, "HasAns_f1": 100 * f1_has, "HasAns_total": 4.0,
        "NoAns_exact": 50.0, "NoAns_f1": 50.0, "NoAns_total": 2.0,
        # Cut ascending: 2 (all null) -> dev-1 3 -> dev-6 4 -> dev-2 4 -> dev-5 3 -> ...
        "best_exact": 100 * 4 / 6, "best_exact_thresh": -5.0,
        # F1: 2 -> 3 -> 4 -> 4 + 2/3 (dev-2, odds -4) -> 3 + 2/3 -> ...
        "best_f1": 100 * (4 + F1_KORIN) / 6, "best_f1_thresh": -4.0,
    }
    assert metrics.keys() == expected.keys()
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value), key
    # Files: predictions, null odds, eval; written atomically (no temp files left).
    assert sorted(os.listdir(tmp_path)) == ["squad_eval.json", "squad_null_odds.json",
                                            "squad_preds.json"]
    with open(tmp_path / "squad_preds.json") as f:
        assert json.load(f) == dict(scorer.predictions)
    with open(tmp_path / "squad_null_odds.json") as f:
        assert json.load(f) == V2_NULL
    blanked = qa.blank_null_predictions(scorer.predictions, scorer.null_odds, -2.75)
    assert blanked["vel-dev-4"] == "" and blanked["vel-dev-5"] == "empty"


def test_v1_and_mrqa_scorers(tok, tmp_path):
    task = _task(tok, "squadv1", tmp_path)
    scorer = task.get_scorer("dev")
    outputs = _outputs_for(task, "dev", V2_TARGETS)
    scorer.update({"squadv1" + k[len("squad"):]: v for k, v in outputs.items()})
    metrics = scorer.get_results()
    assert metrics == pytest.approx(
        {"exact_match": 50.0, "f1": 100 * (2 + F1_KORIN + F1_FESTIVAL) / 4})
    assert sorted(os.listdir(tmp_path)) == ["squadv1_eval.json", "squadv1_preds.json"]

    mrqa = _task(tok, "newsqa")
    examples, features = mrqa.eval_data("dev")
    outputs = _outputs_for(mrqa, "dev", {"nq-1": ["march"], "nq-3": ["7", "to", "2"]})
    keep = [i for i, eid in enumerate(outputs["squad_eid"]) if eid // 1000 != 1]  # no nq-2
    scorer = mrqa.get_scorer("dev")
    scorer.update({k[len("squad_"):]: v[keep] for k, v in outputs.items()})
    # nq-2 has no prediction: skipped, not counted.
    assert scorer.get_results() == {"exact_match": 100.0, "f1": 100.0}
    assert list(scorer.predictions) == ["nq-1", "nq-3"]


def test_scorer_rejects_missing_outputs(tok):
    scorer = _task(tok, joint_prediction=True).get_scorer()
    with pytest.raises(KeyError, match="start_top_index"):
        scorer.update({"squad_eid": np.array([0]), "squad_start_logits": np.zeros([1, L])})


def test_write_json_atomic(tmp_path):
    path = tmp_path / "sub" / "p.json"
    qa.write_json_atomic(str(path), {"a": "é"})
    qa.write_json_atomic(str(path), {"b": 1.5})
    assert json.loads(path.read_text(encoding="utf-8")) == {"b": 1.5}
    assert os.listdir(tmp_path / "sub") == ["p.json"]


# ---------------------------------------------------------------------------
# Metrics.
# ---------------------------------------------------------------------------


def test_normalize_answer():
    assert qa.normalize_answer("The  Cat's  HAT!") == "cats hat"
    assert qa.normalize_answer("An apple a day") == "apple day"
    assert qa.normalize_answer("Theatre anthem") == "theatre anthem"  # whole words only
    assert qa.normalize_answer("  New\tYork\n") == "new york"
    assert qa.normalize_answer("a-n") == ""  # "an" after removing "-", then an article
    assert qa.normalize_answer("(1,889)") == "1889"


def test_exact_match_and_f1():
    assert qa.exact_match("the Eiffel Tower", "Eiffel tower.") == 1
    assert qa.exact_match("Eiffel", "Eiffel Tower") == 0
    assert qa.token_f1("Adela Korin", "the engineer Adela Korin") == pytest.approx(0.8)
    # Bags: "cat cat" vs "cat": common 1, p = 1/2, r = 1.
    assert qa.token_f1("the cat, the cat", "cat") == pytest.approx(2 / 3)
    assert qa.token_f1("red fox", "blue whale") == 0.0
    # Both empty after normalisation: EM 1; F1 0 in v1, 1 in v2; one empty: 0 in v2.
    assert qa.exact_match("The", "") == 1
    assert qa.token_f1("The", "", v2=False) == 0.0
    assert qa.token_f1("The", "", v2=True) == 1.0
    assert qa.token_f1("Paris", "", v2=True) == 0.0
    assert qa.token_f1("", "Paris", v2=True) == 0.0


def test_v1_and_mrqa_metrics_multiple_gold_and_missing():
    gold = {"q1": ["Denver Broncos", "the Broncos"], "q2": ["Santa Clara, California"],
            "q3": ["1852"]}
    preds = {"q1": "Broncos", "q2": "Santa Clara"}
    # q1: "the Broncos" normalises to "broncos": EM 1, F1 1 (2/3 against the first gold);
    # q2: EM 0, F1 = 2 * 1 * (2/3) / (5/3) = 0.8; q3 missing (0 in v1, skipped in MRQA).
    assert qa.squad_v1_metrics(gold, preds) == pytest.approx(
        {"exact_match": 100 / 3, "f1": 100 * 1.8 / 3})
    assert qa.mrqa_metrics(gold, preds) == pytest.approx({"exact_match": 50.0, "f1": 90.0})


def test_v2_metrics_no_answer_cases():
    gold = {"a": ["Paris", "the city of Paris"], "b": [], "c": [".", "the"], "d": []}
    preds = {"a": "Paris!", "b": "", "c": "", "d": "Lyon"}
    odds = {"a": -1.0, "b": -1.0, "c": -1.0, "d": -1.0}
    # Threshold 0: nothing predicted null. a: 1; b: "" vs no answer -> 1; c: its golds
    # normalise to "" (dropped -> no answer) and "" predicted -> 1 (but it "has answers");
    # d: "Lyon" vs no answer -> 0.
    m = qa.squad_v2_metrics(gold, preds, odds, 0.0)
    assert (m["exact"], m["f1"], m["total"]) == (75.0, 75.0, 4.0)
    assert (m["HasAns_exact"], m["HasAns_total"]) == (100.0, 2.0)
    assert (m["NoAns_exact"], m["NoAns_total"]) == (50.0, 2.0)
    # Threshold -2: everything predicted null -> right exactly for b and d.
    m = qa.squad_v2_metrics(gold, preds, odds, -2.0)
    assert (m["exact"], m["f1"]) == (50.0, 50.0)
    # Best threshold (raw scores, odds ascending, ties in prediction order): start at 2
    # (b, d right as null); a +1 -> 3; b 0; c +1 -> 4 (best, at -1); d "Lyon" -1 -> 3.
    assert m["best_exact"] == 100.0 and m["best_exact_thresh"] == -1.0
    # No HasAns / NoAns keys when the data has no such questions.
    assert "NoAns_exact" not in qa.squad_v2_metrics({"a": ["x"]}, {"a": "x"}, {"a": 0.0}, 1.0)


@pytest.mark.skipif(not os.path.exists(SQUAD_DEV_V1),
                    reason=f"{SQUAD_DEV_V1} not present: official SQuAD v1.1 dev check "
                           "not run (not a pass)")
def test_gold_answers_score_100_on_squad_v1_dev():
    gold = qa.load_squad_gold(SQUAD_DEV_V1)
    assert len(gold) == 10570
    preds = {qid: answers[0] for qid, answers in gold.items()}
    assert qa.squad_v1_metrics(gold, preds) == {"exact_match": 100.0, "f1": 100.0}


@pytest.mark.skipif(not os.path.exists(SQUAD_DEV_V2),
                    reason=f"{SQUAD_DEV_V2} not present: official SQuAD v2.0 dev check "
                           "not run (not a pass)")
def test_gold_answers_score_100_on_squad_v2_dev():
    gold = qa.load_squad_gold(SQUAD_DEV_V2)
    assert len(gold) == 11873
    preds = {qid: (answers[0] if answers else "") for qid, answers in gold.items()}
    odds = {qid: (-10.0 if answers else 10.0) for qid, answers in gold.items()}
    m = qa.squad_v2_metrics(gold, preds, odds, -2.75)
    assert (m["exact"], m["f1"], m["total"]) == (100.0, 100.0, 11873.0)
    assert m["NoAns_total"] == 5945.0 and m["HasAns_exact"] == 100.0
    assert m["best_exact"] == 100.0
