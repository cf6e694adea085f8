"""The fine-tuning driver end to end on a learnable fixture task, from a tiny pre-trained
checkpoint."""

import collections
import dataclasses
import json
import math
import re
import string

import numpy as np
import pytest
import tensorflow as tf

from electra_tf.config import FinetuningConfig
from electra_tf.finetuning.feature_cache import FeatureStore
from electra_tf.finetuning.registry import build_tasks
from electra_tf.finetuning.task import shared_feature_specs
from electra_tf.training import finetune
from electra_tf.training.finetune import FinetuneOptions, run_finetuning

WORDS = ["the", "movie", "was", "plot", "actor", "film", "story", "and", "a", "very"]


def sst_tsv(n, seed):
    """SST-2 format; label 1 iff the sentence says "good" (else "bad"): learnable."""
    rng = np.random.default_rng(seed)
    lines = ["sentence\tlabel"]
    for _ in range(n):
        label = int(rng.integers(0, 2))
        words = list(rng.choice(WORDS, 5)) + ["good" if label else "bad"]
        rng.shuffle(words)
        lines.append(f"{' '.join(words)}\t{label}")
    return "\n".join(lines) + "\n"


def write_sst_task(data_dir, n_train, n_dev):
    """``<data_dir>/finetuning_data/sst/{train,dev}.tsv`` of the learnable task (seeds 0, 1)."""
    task_dir = data_dir / "finetuning_data" / "sst"
    task_dir.mkdir(parents=True, exist_ok=True)
    (task_dir / "train.tsv").write_text(sst_tsv(n_train, 0))
    (task_dir / "dev.tsv").write_text(sst_tsv(n_dev, 1))
    return task_dir


TINY_MODEL = {"embedding_size": 16,
              "model_hparam_overrides": {"hidden_size": 32, "num_hidden_layers": 2}}


def tiny_options(tmp_path, pretrained, **kwargs):
    """Options of an in-process run under tmp_path (data in data/, outputs beside it)."""
    return FinetuneOptions(
        data_dir=str(tmp_path / "data"), model_dir=str(tmp_path / "ft" / "model"),
        results_dir=str(tmp_path / "results"), preprocessed_dir=str(tmp_path / "cache"),
        init_checkpoint=pretrained, quiet=True, **kwargs)


def capture_evaluated_model(monkeypatch):
    """Keeps (model, tasks) of every evaluation the driver runs (the trained model)."""
    seen = []
    real = finetune.evaluate

    def evaluate(model, store, split):
        seen.append((model, store.tasks))
        return real(model, store, split)

    monkeypatch.setattr(finetune, "evaluate", evaluate)
    return seen


def model_outputs(model, tasks, index, split="dev"):
    """Task ``index``'s examples of ``split``, their features and the model's outputs on
    them, featurised and batched here (one batch, eager, no dropout)."""
    task = tasks[index]
    examples = task.get_examples(split)
    features = [f for example in examples for f in task.featurize(example, False)]
    specs = dict(shared_feature_specs(task.max_seq_length))
    for t in tasks:
        specs.update(t.feature_specs())
    batch = {name: tf.constant(np.stack([np.asarray(f.get(name, np.zeros(shape))).reshape(shape)
                                         for f in features]),
                               tf.float32 if dtype == "float32" else tf.int32)
             for name, (shape, dtype) in specs.items()}
    batch["task_id"] = tf.fill([len(features)], index)
    out = model(batch, training=False)
    return examples, features, {k: v.numpy() for k, v in out.items()}


@pytest.fixture(scope="module")
def pretrained(tiny_pretrained_run):
    return tiny_pretrained_run["discriminator"]


def test_sst_fixture_fine_tunes_from_a_pretrained_checkpoint_and_beats_chance(
        tmp_path, pretrained):
    write_sst_task(tmp_path / "data", 320, 64)
    config = FinetuningConfig.from_preset("small", ["sst"], {
        "max_seq_length": 16, "train_batch_size": 16, "eval_batch_size": 16,
        "learning_rate": 1e-3, "num_train_epochs": 3, **TINY_MODEL})
    options = tiny_options(tmp_path, pretrained)
    results = run_finetuning(config, options)
    assert results[0]["sst"]["accuracy"] > 80.0  # chance is ~50
    written = json.load(open(tmp_path / "results" / "sst_results.json"))
    assert written[0]["sst"]["accuracy"] == pytest.approx(results[0]["sst"]["accuracy"])
    assert (tmp_path / "cache" / "sst_train.metadata").exists()
    assert json.load(open(tmp_path / "cache" / "sst_train.metadata"))["n_examples"] % 16 == 0
    assert (tmp_path / "ft" / "model_1" / "checkpoint").exists()


def test_cli_uses_the_original_layout(tmp_path, pretrained, capsys):
    """run_finetuning.py's command line (in-process: ``run_finetuning.main(argv)``)."""
    import os
    import shutil
    from electra_tf import run_finetuning
    from conftest import run_in_process
    data = tmp_path / "data"
    task_dir = write_sst_task(data, 64, 32)
    test_rows = [line.split("\t")[0] for line in sst_tsv(20, 2).splitlines()[1:]]
    (task_dir / "test.tsv").write_text(
        "index\tsentence\n" + "".join(f"{i}\t{text}\n" for i, text in enumerate(test_rows)))
    model = data / "models" / "electra_small"
    shutil.copytree(os.path.dirname(pretrained), model / "discriminator")
    hparams = json.dumps({"max_seq_length": 16, "train_batch_size": 16, "eval_batch_size": 16,
                          "num_train_epochs": 1, "embedding_size": 16,
                          "write_test_outputs": True,
                          "model_hparam_overrides": {"hidden_size": 32, "num_hidden_layers": 2}})

    def cli(*args):
        done = run_in_process(capsys, run_finetuning.main, [f"--data_dir={data}", *args])
        return done.returncode, done.stderr

    status, err = cli("--task_names=sst", f"--hparams={hparams}", "--num_trials=2")
    assert status == 0, err[-3000:]
    assert "trial 1: sst: accuracy:" in err
    assert (model / "results" / "sst_results.txt").read_text().startswith("sst: accuracy: ")
    assert (model / "finetuning_models" / "sst_model_2" / "checkpoint").exists()
    trials = json.load(open(model / "results" / "sst_results.json"))
    accuracies = [trial["sst"]["accuracy"] for trial in trials]
    summary = json.load(open(model / "results" / "sst_summary.json"))["sst"]["accuracy"]
    assert len(accuracies) == 2 and summary["n"] == 2
    assert summary["median"] == pytest.approx(np.median(accuracies))
    assert summary["std"] == pytest.approx(np.std(accuracies))
    assert "over trials: sst accuracy: median" in err
    for trial in (1, 2):  # leaderboard file: header, one row per test example, label strings
        rows = (model / "results" / "test_predictions" / f"trial_{trial}" /
                "SST-2.tsv").read_text().splitlines()
        assert rows[0] == "index\tprediction" and len(rows) == 21
        assert [r.split("\t")[0] for r in rows[1:]] == [str(i) for i in range(20)]
        assert {r.split("\t")[1] for r in rows[1:]} <= {"0", "1"}
    status, err = cli("--task_names=sst", "--hparams=" + json.dumps(
        {**json.loads(hparams), "model_hparam_overrides": {"hidden_size": 64,
                                                           "num_hidden_layers": 2}}))
    assert status == 1 and "Traceback" not in err
    assert "shape mismatch for electra/" in err and "--model_size" in err
    status, err = cli("--task_names=cola", f"--hparams={hparams}")
    assert status == 1 and "cola" in err and "Traceback" not in err


# SQuAD 2.0 scoring written out from the official v2 script's rules (spec 6.5 "Metrics"),
# independently of electra_tf.finetuning.qa.
def _normalize(text):
    text = "".join(ch for ch in text.lower() if ch not in string.punctuation)
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def _f1(gold, pred):
    g, p = _normalize(gold).split(), _normalize(pred).split()
    if not g or not p:
        return float(g == p)
    common = sum((collections.Counter(g) & collections.Counter(p)).values())
    if not common:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def squad_v2_by_hand(gold, predictions, null_scores, threshold):
    """gold: qid -> answer texts; a question is predicted unanswerable when its null score
    exceeds ``threshold``."""
    answers = {q: [a for a in texts if _normalize(a)] for q, texts in gold.items()}
    has_answer = {q: bool(a) for q, a in answers.items()}
    raw = {"exact": {q: max(float(_normalize(a) == _normalize(predictions[q]))
                            for a in answers[q] or [""]) for q in gold},
           "f1": {q: max(_f1(a, predictions[q]) for a in answers[q] or [""]) for q in gold}}

    def scores(kind, cut):  # null when the null score > cut: right iff no answer
        return {q: (float(not has_answer[q]) if null_scores[q] > cut else raw[kind][q])
                for q in gold}

    n = len(gold)
    out = {"total": float(n)}
    for kind in ("exact", "f1"):
        final = scores(kind, threshold)
        out[kind] = 100.0 * sum(final.values()) / n
        for name, flag in (("HasAns", True), ("NoAns", False)):
            qs = [q for q in gold if has_answer[q] == flag]
            if qs:
                out[f"{name}_{kind}"] = 100.0 * sum(final[q] for q in qs) / len(qs)
                out[f"{name}_total"] = float(len(qs))
        # Best threshold: everything null first, then answer questions in ascending order
        # of null score; the first strict improvement's cut is kept (0.0 if none).
        best, best_cut = float(sum(not h for h in has_answer.values())), 0.0
        for cut in sorted(null_scores.values()):
            score = sum(scores(kind, cut).values())
            if score > best:
                best, best_cut = score, cut
        out[f"best_{kind}"], out[f"best_{kind}_thresh"] = 100.0 * best / n, best_cut
    return out


def test_squad_fixture_trains_evaluates_and_writes_predictions(tmp_path, pretrained,
                                                               monkeypatch):
    import shutil
    from conftest import DATA
    data = tmp_path / "data" / "finetuning_data"
    shutil.copytree(DATA / "qa" / "squad", data / "squad")
    shutil.copy(data / "squad" / "dev.json", data / "squad" / "test.json")
    config = FinetuningConfig.from_preset("small", ["squad"], {"write_test_outputs": True,
        "max_seq_length": 48, "doc_stride": 16, "max_query_length": 16, "beam_size": 5,
        "n_best_size": 5, "train_batch_size": 8, "eval_batch_size": 8, "num_train_epochs": 1,
        **TINY_MODEL})
    options = tiny_options(tmp_path, pretrained)
    seen = capture_evaluated_model(monkeypatch)
    results = run_finetuning(config, options)[0]["squad"]
    model, tasks = seen[0]

    # Null score per question (spec 6.5 post-processing 3): the MINIMUM answerable logit
    # over its features, recomputed from the trained model's outputs.
    examples, features, out = model_outputs(model, tasks, 0)
    qid_of = {example.eid: example.qas_id for example in examples}
    per_question = collections.defaultdict(list)
    for feature, logit in zip(features, out["squad_answerable_logit"]):
        per_question[qid_of[feature["squad_eid"] // 1000]].append(float(logit))
    assert max(len(v) for v in per_question.values()) > 1  # several doc spans: min matters
    null_scores = {qid: min(logits) for qid, logits in per_question.items()}
    null_odds = json.load(open(tmp_path / "results" / "squad_null_odds.json"))
    assert null_odds == pytest.approx(null_scores, abs=1e-4)

    # The metrics, from the written predictions and the gold file.
    predictions = json.load(open(tmp_path / "results" / "squad_preds.json"))
    gold = {qa["id"]: [a["text"] for a in qa["answers"]]
            for article in json.load(open(data / "squad" / "dev.json"))["data"]
            for paragraph in article["paragraphs"] for qa in paragraph["qas"]}
    assert set(predictions) == set(gold) and all(predictions.values())
    expected = squad_v2_by_hand(gold, predictions, null_scores, -2.75)
    assert sorted(results) == sorted(expected)
    for key, value in expected.items():
        assert results[key] == pytest.approx(value, abs=1e-6), key

    # Test output (spec 6.8): "" where the null score exceeds qa_na_threshold, else the text.
    def test_predictions(trial):
        return json.load(open(tmp_path / "results" / "test_predictions" / f"trial_{trial}" /
                              "squad_test_predictions.json"))
    assert test_predictions(1) == {q: "" if null_scores[q] > -2.75 else predictions[q]
                                   for q in gold}
    # ... and at a threshold inside the widest gap between the null scores, so that both
    # branches are taken.
    ordered = sorted(null_scores.values())
    gap, i = max((ordered[i] - ordered[i - 1], i) for i in range(1, len(ordered)))
    assert gap > 1e-3
    cut = (ordered[i - 1] + ordered[i]) / 2
    # A task is built with its settings once: another threshold is another task (and store).
    cut_config = dataclasses.replace(config, qa={**config.qa, "qa_na_threshold": cut})
    cut_tasks = build_tasks(cut_config, options, tasks[0].tokenizer)
    assert cut_tasks[0].settings.qa_na_threshold == cut
    finetune.write_test_outputs(model, FeatureStore.for_run(cut_tasks, cut_config, options), 2,
                                options)
    assert test_predictions(2) == {q: "" if null_scores[q] > cut else predictions[q]
                                   for q in gold}
    assert sum(v == "" for v in test_predictions(2).values()) == len(ordered) - i


# No dropout anywhere (the heads' fixed 0.1 is patched to 0 as well): XLA draws other
# dropout masks than TensorFlow's kernels, and each replica its own, so only dropout-free
# runs can be compared number for number.
NO_DROPOUT = {**TINY_MODEL, "model_hparam_overrides": {
    **TINY_MODEL["model_hparam_overrides"], "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0}}
# 64 examples, batch 16, 2 epochs: 8 updates that move the weights by ~1e-2.
SMALL_SST = {"max_seq_length": 16, "train_batch_size": 16, "eval_batch_size": 16,
             "learning_rate": 1e-3, "num_train_epochs": 2, **NO_DROPOUT}


def checkpoint_values(path):
    reader = tf.train.load_checkpoint(path)
    return {name: reader.get_tensor(name) for name, _ in tf.train.list_variables(path)
            if "adam" not in name and name != "global_step"}


@pytest.fixture(scope="module")
def float32_sst(tmp_path_factory, pretrained):
    """The one-device float32 reference run of SMALL_SST: (results, fine-tuned weights, the
    largest change of an encoder weight by fine-tuning)."""
    from electra_tf.finetuning import heads
    tmp = tmp_path_factory.mktemp("float32_sst")
    write_sst_task(tmp / "data", 64, 16)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(heads, "HEAD_DROPOUT", 0.0)
        results = run_finetuning(FinetuningConfig.from_preset("small", ["sst"], SMALL_SST),
                                 tiny_options(tmp, pretrained))[0]["sst"]
    weights = checkpoint_values(str(tmp / "ft" / "model_1"))
    initial = checkpoint_values(pretrained)
    update = max(np.abs(weights[n] - initial[n]).max() for n in weights if n in initial)
    assert update > 1e-3
    return results, weights, update


@pytest.mark.parametrize("precision,jit", [("bfloat16", False), (None, True)])
def test_precision_and_xla_variants_match_float32(tmp_path, pretrained, float32_sst,
                                                  precision, jit, monkeypatch):
    from electra_tf.finetuning import heads
    monkeypatch.setattr(heads, "HEAD_DROPOUT", 0.0)
    write_sst_task(tmp_path / "data", 64, 16)
    config = FinetuningConfig.from_preset("small", ["sst"], SMALL_SST)
    options = tiny_options(tmp_path, pretrained, mixed_precision=precision, jit_compile=jit)
    try:
        results = run_finetuning(config, options)[0]["sst"]
    finally:
        import keras
        keras.mixed_precision.set_global_policy("float32")
    reference, reference_weights, update = float32_sst
    weights = checkpoint_values(str(tmp_path / "ft" / "model_1"))
    assert sorted(weights) == sorted(reference_weights)
    assert all(w.dtype == np.float32 for w in weights.values())  # float32 master weights
    diff = max(np.abs(weights[n] - reference_weights[n]).max() for n in weights)
    if jit:  # the same float32 arithmetic, fused by XLA: equal up to rounding
        assert diff < 1e-5
        assert results == pytest.approx(reference, rel=1e-5)
    else:
        # bfloat16 compute (8-bit mantissa; measured: weights off by ~15% of the largest
        # update, dev loss by ~0.6%). Stated tolerance: weights within half the largest
        # update, dev loss within 3%, accuracy within one of the 16 dev examples; and not
        # identical, or bfloat16 was not in use.
        assert 0 < diff < 0.5 * update
        assert results["loss"] == pytest.approx(reference["loss"], rel=3e-2)
        assert abs(results["accuracy"] - reference["accuracy"]) <= 100 / 16


CHUNK_WORDS = {"det": ["the", "a"], "adj": ["big", "red", "old"],
               "noun": ["dog", "cat", "house", "car"], "verb": ["sees", "likes", "runs"],
               "prep": ["in", "on"]}


def chunk_sentences(n, seed):
    """Sentences "NP VP NP [PP NP] ." with CoNLL B-/I- chunk tags; each also returns its
    gold chunks (start, end, type), known from the construction."""
    rng = np.random.default_rng(seed)
    pick = lambda kind: str(rng.choice(CHUNK_WORDS[kind]))
    sentences = []
    for _ in range(n):
        words, tags, spans = [], [], []

        def chunk(kind, parts):
            spans.append((len(words), len(words) + len(parts) - 1, kind))
            for i, part in enumerate(parts):
                words.append(pick(part))
                tags.append(("B-" if i == 0 else "I-") + kind)

        noun_phrase = lambda: ["det"] + (["adj"] if rng.random() < 0.5 else []) + ["noun"]
        chunk("NP", noun_phrase())
        chunk("VP", ["verb"])
        chunk("NP", noun_phrase())
        if rng.random() < 0.5:
            chunk("PP", ["prep"])
            chunk("NP", noun_phrase())
        words.append(".")
        tags.append("O")
        sentences.append((words, tags, spans))
    return sentences


def write_chunk_task(data_dir, n_train, n_dev):
    """Train and dev files. Dev gold the model cannot reproduce, so that precision, recall
    and F1 all differ and are neither 0 nor 100: in every fourth sentence the last NP is
    labelled ADJP (a type never seen in training); in another fourth the verb and the
    object NP form one VP chunk (so fewer gold than predicted chunks)."""
    task_dir = data_dir / "finetuning_data" / "chunk"
    task_dir.mkdir(parents=True)
    train, dev = chunk_sentences(n_train, 0), chunk_sentences(n_dev, 1)
    for words, tags, spans in dev[3::4]:
        start, end, _ = spans[-1]
        tags[start:end + 1] = [t[:2] + "ADJP" for t in tags[start:end + 1]]
        spans[-1] = (start, end, "ADJP")
    for words, tags, spans in dev[1::4]:
        (start, _, _), (_, end, _) = spans[1], spans[2]
        tags[start:end + 1] = ["B-VP"] + ["I-VP"] * (end - start)
        spans[1:3] = [(start, end, "VP")]
    for name, sentences in (("train", train), ("dev", dev)):
        (task_dir / f"{name}.txt").write_text("".join(
            "".join(f"{w} X {t}\n" for w, t in zip(words, tags)) + "\n"
            for words, tags, _ in sentences))
    return train, dev


def bioes(n, spans):
    """The BIOES tags of n words with these chunks (spec 6.6 re-encoding)."""
    tags = ["O"] * n
    for start, end, kind in spans:
        tags[start:end + 1] = ([f"S-{kind}"] if start == end else
                               [f"B-{kind}"] + [f"I-{kind}"] * (end - start - 1) + [f"E-{kind}"])
    return tags


def spans_of_bioes(tags):
    """Spec 6.6: a span closes when a B-/S-/O tag follows a non-O tag (E- does not close
    it); it opens at B-/S- or any non-O tag after O; its type is its last tag's type."""
    spans, start, kind = [], None, None
    for i, tag in enumerate(tags):
        prefix, _, tag_type = tag.partition("-")
        if start is not None and prefix in ("B", "S", "O"):
            spans.append((start, i - 1, kind))
            start = None
        if prefix != "O":
            start = i if start is None else start
            kind = tag_type
    if start is not None:
        spans.append((start, len(tags) - 1, kind))
    return spans


def test_chunk_task_trains_and_reports_the_span_f1_of_its_predictions(tmp_path, pretrained,
                                                                      monkeypatch):
    train, dev = write_chunk_task(tmp_path / "data", 48, 16)
    config = FinetuningConfig.from_preset("small", ["chunk"], {
        "max_seq_length": 32, "train_batch_size": 8, "eval_batch_size": 8,
        "learning_rate": 1e-3, "num_train_epochs": 2, **TINY_MODEL})
    options = tiny_options(tmp_path, pretrained)
    seen = capture_evaluated_model(monkeypatch)
    results = run_finetuning(config, options)[0]["chunk"]
    # The tag ids: the sorted BIOES tags of train and dev.
    tags = sorted({tag for words, _, spans in train + dev for tag in bioes(len(words), spans)})
    assert len(tags) == 12  # {B,I,E}-{NP,ADJP,VP}, S-VP, S-PP, O
    mapping = json.load(open(tmp_path / "cache" / "chunk_label_mapping.json"))
    assert mapping == {tag: i for i, tag in enumerate(tags)}

    examples, features, out = model_outputs(*seen[0], 0)
    assert [ex.words for ex in examples] == [words for words, _, _ in dev]
    gold, predicted = set(), set()
    for row, (words, _, spans) in enumerate(dev):
        assert sum(features[row]["chunk_labels_mask"]) == len(words)  # every word fits
        gold |= {(row, *span) for span in spans}
        predicted |= {(row, *span) for span in spans_of_bioes(
            [tags[i] for i in out["chunk_predictions"][row, :len(words)]])}
    correct = len(gold & predicted)
    precision, recall = correct / len(predicted), correct / len(gold)
    f1 = 2 * precision * recall / (precision + recall)
    assert 0 < correct < len(gold) < len(predicted)  # P, R and F1 all differ
    assert results["precision"] == pytest.approx(100 * precision)
    assert results["recall"] == pytest.approx(100 * recall)
    assert results["f1"] == pytest.approx(100 * f1)


def test_mirrored_strategy_fine_tunes_like_one_device(tmp_path, pretrained, float32_sst):
    """Two logical CPU replicas, each half of every batch (the loss is a per-replica sum,
    summed across replicas): the same updates as one device, so the same weights and dev
    results as the float32 reference (dropout off in both)."""
    import os
    import subprocess
    import sys
    import textwrap
    from conftest import ROOT
    write_sst_task(tmp_path / "data", 64, 16)
    script = textwrap.dedent(f"""
        import json, sys
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        sys.path[:0] = [{str(ROOT)!r}]
        from electra_tf.config import FinetuningConfig
        from electra_tf.finetuning import heads
        from electra_tf.training.finetune import FinetuneOptions, run_finetuning
        heads.HEAD_DROPOUT = 0.0
        config = FinetuningConfig.from_preset("small", ["sst"],
                                              json.loads({json.dumps(SMALL_SST)!r}))
        options = FinetuneOptions(data_dir={str(tmp_path / "data")!r},
            model_dir={str(tmp_path / "ft")!r}, results_dir={str(tmp_path / "results")!r},
            preprocessed_dir={str(tmp_path / "cache")!r}, init_checkpoint={pretrained!r},
            strategy="mirrored", quiet=True)
        assert len(tf.config.list_logical_devices("CPU")) == 2
        print("RESULT" + json.dumps(run_finetuning(config, options)))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.split("RESULT", 1)[1])[0]["sst"]
    reference, reference_weights, _ = float32_sst
    weights = checkpoint_values(str(tmp_path / "ft_1"))
    assert sorted(weights) == sorted(reference_weights)
    for name, value in weights.items():  # float32 sums in another order
        np.testing.assert_allclose(value, reference_weights[name], atol=1e-5, err_msg=name)
    assert results == pytest.approx(reference, rel=1e-5)


def np_log_softmax(x):
    x = x.astype(np.float64) - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def mcc_by_hand(labels, predictions):
    """Binary Matthews correlation, 0 when undefined (sklearn's convention)."""
    tp = np.sum((labels == 1) & (predictions == 1))
    tn = np.sum((labels == 0) & (predictions == 0))
    fp = np.sum((labels == 0) & (predictions == 1))
    fn = np.sum((labels == 1) & (predictions == 0))
    denominator = math.sqrt(float((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)))
    return float(tp * tn - fp * fn) / denominator if denominator else 0.0


def test_multi_task_run_scores_each_task(tmp_path, pretrained, monkeypatch):
    import shutil
    from conftest import DATA
    write_sst_task(tmp_path / "data", 160, 16)
    cola = tmp_path / "data" / "finetuning_data" / "cola"
    shutil.copytree(DATA / "glue" / "cola", cola)  # its train holds one malformed row
    # More train rows and a dev set of the learnable good/bad task, in CoLA's layout
    # (source, label, star, sentence; no header).
    to_cola = lambda tsv: [line.split("\t")[::-1] for line in tsv.splitlines()[1:]]
    with open(cola / "train.tsv", "a") as f:
        f.write("".join(f"src\t{label}\t\t{text}\n" for label, text in to_cola(sst_tsv(128, 3))))
    cola_dev = to_cola(sst_tsv(12, 4))
    (cola / "dev.tsv").write_text("".join(f"src\t{label}\t\t{text}\n" for label, text in cola_dev))
    config = FinetuningConfig.from_preset("small", "sst,cola", {
        "max_seq_length": 16, "train_batch_size": 8, "eval_batch_size": 8,
        "learning_rate": 1e-3, "num_train_epochs": 2, **TINY_MODEL})
    assert config.task_names == ["sst", "cola"] and config.num_train_epochs == 2
    options = tiny_options(tmp_path, pretrained)
    seen = capture_evaluated_model(monkeypatch)
    results = run_finetuning(config, options)[0]
    assert set(results) == {"sst", "cola"}
    assert (tmp_path / "results" / "sst,cola_results.json").exists()
    assert (tmp_path / "cache" / "cola_sst_train.tfrecord").exists()  # one mixed cache
    # Each task's metrics from its own head's outputs on its own dev rows, labels read
    # from the dev files here.
    model, tasks = seen[0]
    gold = {"sst": [int(line.split("\t")[1]) for line in sst_tsv(16, 1).splitlines()[1:]],
            "cola": [int(label) for label, _ in cola_dev]}
    for index, name in enumerate(["sst", "cola"]):
        _, _, out = model_outputs(model, tasks, index)
        labels = np.array(gold[name])
        logits = out[f"{name}_logits"]
        assert len(logits) == len(labels)
        predictions = logits.argmax(-1)
        loss = -np_log_softmax(logits)[np.arange(len(labels)), labels].mean()
        assert results[name]["loss"] == pytest.approx(loss, rel=1e-4), name
        if name == "sst":
            assert results[name]["accuracy"] == pytest.approx(
                100 * np.mean(predictions == labels)), name
        else:  # (a constant prediction would make the MCC 0 whatever the scorer does)
            assert len(set(predictions)) == 2
            assert results[name]["mcc"] == pytest.approx(
                100 * mcc_by_hand(labels, predictions)), name
