"""What a task owns (issue 15, item 2): its head, its settings and the run's directories
(given once, when the registry builds it: issue 25), what its cached features depend on,
its test outputs and how it is served; the driver asks, never branches on families.
Expected values are written out by hand, not derived from the code under test."""

import ast
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import DATA
from electra_tf.config import FinetuningConfig
from electra_tf.finetuning import heads, qa
from electra_tf.finetuning.registry import build_tasks, get_task, task_class
from electra_tf.tokenization import FullTokenizer, default_vocab_file

PACKAGE = Path(__file__).resolve().parents[1] / "electra_tf"


@pytest.fixture(scope="module")
def tokenizer():
    return FullTokenizer(default_vocab_file())


def run_options(**overrides):
    """The FinetuneOptions fields the registry reads to build tasks."""
    values = {"data_dir": "/data", "data_source": "tsv", "tfds_data_dir": None,
              "check_glue_columns": True, "results_dir": "/results",
              "preprocessed_dir": "/preprocessed"}
    return SimpleNamespace(**{**values, **overrides})


def glue_task(name, tokenizer, **kwargs):
    return get_task(name, str(DATA / "glue"), tokenizer, 16, task_id=0, **kwargs)


def chunk_task(tokenizer, task_id=2):
    return get_task("chunk", str(DATA / "tagging"), tokenizer, 32, task_id=task_id)


def squad_task(name, tokenizer, **kwargs):
    return get_task(name, str(DATA / "qa"), tokenizer, 64, task_id=1, **kwargs)


# ---------------------------------------------------------------------------
# Heads
# ---------------------------------------------------------------------------

def test_each_task_builds_the_head_it_needs(tokenizer):
    config = FinetuningConfig.from_preset("small", ["squad"], {
        "joint_prediction": False, "beam_size": 7, "answerable_classifier": True,
        "answerable_uses_start_logits": False, "answerable_weight": 0.25})
    sst = glue_task("sst", tokenizer).build_head()
    assert type(sst) is heads.ClassificationHead and sst.units == 2
    assert sst.encoder_output == "pooled_output" and sst.task_name == "sst"
    mnli = glue_task("mnli", tokenizer).build_head()
    assert type(mnli) is heads.ClassificationHead and mnli.units == 3
    sts = glue_task("sts", tokenizer).build_head()
    assert type(sts) is heads.RegressionHead and sts.units == 1
    assert sts.encoder_output == "pooled_output"
    chunk = chunk_task(tokenizer)
    tagging = chunk.build_head()
    assert type(tagging) is heads.TaggingHead and tagging.units == len(chunk.label_mapping)
    assert tagging.encoder_output == "sequence_output"
    head = squad_task("squad", tokenizer,
                      settings=qa.QASettings.from_config(config)).build_head()
    assert type(head) is heads.QAHead and head.encoder_output == "sequence_output"
    assert (head.joint, head.beam_size, head.answerable, head.uses_start,
            head.answerable_weight) == (False, 7, True, False, 0.25)
    # Built without settings: the defaults of configs/finetuning.json (spec 1.6).
    head = squad_task("squad", tokenizer).build_head()
    assert (head.joint, head.beam_size, head.answerable, head.uses_start,
            head.answerable_weight) == (True, 20, True, True, 0.5)


# ---------------------------------------------------------------------------
# What a task is built with
# ---------------------------------------------------------------------------

def test_the_registry_builds_each_task_with_its_settings_and_the_runs_directories(
        tokenizer):
    hparams = {"double_unordered": False, "doc_stride": 32, "max_query_length": 12}
    options = run_options(data_source="tfds", tfds_data_dir="/tfds")
    [mrpc] = build_tasks(FinetuningConfig.from_preset("small", ["mrpc"], hparams), options,
                         tokenizer)
    assert (mrpc.settings.double_unordered, mrpc.data_source, mrpc.tfds_data_dir,
            mrpc.check_columns) == (False, "tfds", "/tfds", True)
    assert mrpc.data_dir == "/data/finetuning_data/mrpc"
    config = FinetuningConfig.from_preset("small", ["chunk", "squad"], hparams)
    chunk, squad = build_tasks(config, run_options(), tokenizer)
    assert chunk.label_mapping_dir == "/preprocessed" and chunk.task_id == 0
    assert (squad.settings.doc_stride, squad.settings.max_query_length, squad.results_dir,
            squad.task_id) == (32, 12, "/results", 1)
    with pytest.raises(ValueError, match="--data_source=tfds is available for GLUE tasks "
                                         "only, not 'conll:ner'"):
        build_tasks(FinetuningConfig.from_preset("small", ["conll:ner"]), options, tokenizer)


# ---------------------------------------------------------------------------
# What the cached features depend on
# ---------------------------------------------------------------------------

def test_cache_options_and_source_files_per_family(tokenizer):
    sst = glue_task("sst", tokenizer)
    assert sst.cache_options() == {"class": "SST", "debug": False, "task_id": 0,
                                   "double_unordered": True, "data_source": "tsv",
                                   "tfds_data_dir": None}
    assert sst.source_file("train") == str(DATA / "glue" / "sst" / "train.tsv")
    assert glue_task("mnli", tokenizer).source_file("dev") == str(
        DATA / "glue" / "mnli" / "dev_matched.tsv")
    assert glue_task("sst", tokenizer, data_source="tfds").source_file("train") is None

    squad = squad_task("squad", tokenizer)
    assert squad.cache_options() == {"class": "QATask", "debug": False, "task_id": 1,
                                     "max_query_length": 64, "doc_stride": 128}
    assert squad.source_file("dev") == str(DATA / "qa" / "squad" / "dev.json")

    chunk = chunk_task(tokenizer)
    sha = hashlib.sha256(json.dumps(chunk.label_mapping, sort_keys=True).encode()).hexdigest()
    assert chunk.cache_options() == {
        "class": "ChunkingTask", "debug": False, "task_id": 2, "column": -1,
        "lower_case": True, "span_rule": "electra", "keep_last_unterminated": False,
        "label_mapping_sha256": sha}
    assert chunk.source_file("dev") == str(DATA / "tagging" / "chunk" / "dev.txt")


# ---------------------------------------------------------------------------
# Test outputs
# ---------------------------------------------------------------------------

def batches_of(outputs_by_split):
    asked = []

    def predict(split):
        asked.append(split)
        return iter(outputs_by_split[split])
    return predict, asked


def test_glue_tasks_write_leaderboard_files_from_their_outputs(tokenizer, tmp_path):
    sst = glue_task("sst", tokenizer)
    predict, asked = batches_of({"test": [
        {"sst_eid": np.array([1]), "sst_logits": np.array([[0.2, -1.0]]),
         "sst_predictions": np.array([0])},
        {"sst_eid": np.array([0]), "sst_logits": np.array([[-3.0, 2.0]]),
         "sst_predictions": np.array([1])}]})
    [path] = sst.write_test_outputs(predict, str(tmp_path))
    assert asked == ["test"] and path == str(tmp_path / "SST-2.tsv")
    assert Path(path).read_text() == "index\tprediction\n0\t1\n1\t0\n"

    sts = glue_task("sts", tokenizer)
    predict, _ = batches_of({"test": [{"sts_eid": np.array([0, 1]),
                                       "sts_predictions": np.array([0.5, 0.125])}]})
    [path] = sts.write_test_outputs(predict, str(tmp_path))
    assert Path(path).read_text() == "index\tprediction\n0\t2.5\n1\t0.625\n"

    mnli = glue_task("mnli", tokenizer)
    logits = {"mnli_eid": np.array([0]), "mnli_logits": np.array([[0.0, 0.0, 1.0]]),
              "mnli_predictions": np.array([2])}
    predict, asked = batches_of({s: [logits] for s in
                                 ("test_matched", "test_mismatched", "diagnostic")})
    written = mnli.write_test_outputs(predict, str(tmp_path))
    assert asked == ["test_matched", "test_mismatched", "diagnostic"]
    assert [Path(p).name for p in written] == ["MNLI-m.tsv", "MNLI-mm.tsv", "AX.tsv"]
    assert Path(written[2]).read_text() == "index\tprediction\n0\tneutral\n"


def test_tasks_without_test_outputs_ask_for_no_predictions(tokenizer, tmp_path):
    # The original writes test outputs for GLUE and SQuAD 2.0 only.
    for task in (squad_task("squadv1", tokenizer), chunk_task(tokenizer)):
        predict, asked = batches_of({})
        assert task.write_test_outputs(predict, str(tmp_path)) == []
        assert asked == []


# ---------------------------------------------------------------------------
# Serving (what export asks)
# ---------------------------------------------------------------------------

def test_serving_info_per_family(tokenizer):
    assert glue_task("sst", tokenizer).serving_info() == {
        "task": "sst", "kind": "classification", "pair": False, "labels": ["0", "1"]}
    assert glue_task("rte", tokenizer).serving_info() == {
        "task": "rte", "kind": "classification", "pair": True,
        "labels": ["entailment", "not_entailment"]}
    assert glue_task("sts", tokenizer).serving_info() == {
        "task": "sts", "kind": "regression", "pair": True, "scale": 5.0, "offset": 0.0}
    chunk = chunk_task(tokenizer)
    info = chunk.serving_info()
    assert info["kind"] == "tagging" and info["pair"] is False and info["lower_case"] is True
    assert info["labels"] == sorted(chunk.label_mapping, key=chunk.label_mapping.get)
    assert task_class("squad").export_kind is None
    with pytest.raises(NotImplementedError, match="question answering heads are not exported"):
        squad_task("squad", tokenizer).serving_info()
    assert [task_class(n).export_kind for n in ("cola", "sts", "chunk", "conll:ner")] == [
        "classification", "regression", "tagging", "tagging"]


# ---------------------------------------------------------------------------
# Structure
# ---------------------------------------------------------------------------

def imported_modules(path: Path) -> set:
    """Every module ``path`` imports (also inside functions), as dotted names."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_driver_knows_no_task_family():
    driver = PACKAGE / "training" / "finetune.py"
    families = tuple(f"electra_tf.finetuning.{m}" for m in ("glue", "qa", "tagging"))
    assert not [m for m in imported_modules(driver) if m.startswith(families)]
    source = driver.read_text()
    assert "isinstance(" not in source
    for name in ('"squad"', '"sst"', '"chunk"', "QATask", "GlueTask", "TaggingTask"):
        assert name not in source


def test_glue_readers_import_no_circle():
    # glue/tasks.py reads the TSVs and may call the tfds reader; the tfds reader only needs
    # the shared example type.
    glue_imports = {m for m in imported_modules(PACKAGE / "finetuning" / "glue" / "tfds.py")
                    if m.startswith("electra_tf.finetuning.glue")}
    assert glue_imports and all(m.startswith("electra_tf.finetuning.glue.examples")
                                for m in glue_imports)


def test_qa_package_keeps_its_names_and_needs_no_tensorflow():
    code = ("import sys\n"
            "from electra_tf.finetuning.qa import (QASettings, QAExample, QAFeature, QATask, "
            "QAScorer, get_qa_task, read_squad_examples, read_mrqa_examples, split_context, "
            "compute_doc_spans, is_max_context, improve_answer_span, featurize_example, "
            "get_final_text, postprocess, postprocess_example, blank_null_predictions, "
            "write_json_atomic, normalize_answer, exact_match, token_f1, squad_v1_metrics, "
            "squad_v2_metrics, mrqa_metrics, load_squad_gold, load_mrqa_gold, QA_TASKS, "
            "SQUAD_TASKS, MRQA_TASKS, EID_MULTIPLIER)\n"
            "import electra_tf.finetuning.qa as qa\n"
            "assert all(hasattr(qa, n) for n in qa.__all__)\n"
            "print('tensorflow' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "False"
