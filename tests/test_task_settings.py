"""Tasks configured once (issue 25): each family's typed settings come from its section of
configs/finetuning.json, the original flat hparam names still set them, a task is built
once with them and asks nothing of the run afterwards, and one feature store serves the
driver. Expected values come from the JSON file and from counting by hand, not from the
code under test."""

import dataclasses
import inspect
import json
import shutil
from types import SimpleNamespace

import pytest

from conftest import DATA, ROOT, one_error_line
from electra_tf.config import ConfigError, FinetuningConfig
from electra_tf.finetuning import glue, qa, tagging
from electra_tf.finetuning.feature_cache import FeatureStore
from electra_tf.finetuning.registry import build_tasks, get_task
from electra_tf.finetuning.task import Task
from electra_tf.tokenization import FullTokenizer, default_vocab_file

SPEC = json.loads((ROOT / "configs" / "finetuning.json").read_text())["finetuning"]
FAMILIES = {"glue": glue.GlueSettings, "qa": qa.QASettings, "tagging": tagging.TaggingSettings}


@pytest.fixture(scope="module")
def tokenizer():
    return FullTokenizer(default_vocab_file())


def run_options(tmp_path, **overrides):
    """What the registry and the store read of the driver's FinetuneOptions."""
    values = {"data_dir": str(tmp_path / "data"), "results_dir": str(tmp_path / "results"),
              "preprocessed_dir": str(tmp_path / "cache"), "data_source": "tsv",
              "tfds_data_dir": None, "check_glue_columns": True, "seed": 0, "quiet": True}
    return SimpleNamespace(**{**values, **overrides})


def with_data(tmp_path, *copies):
    """``(source dir, task dir name)`` copied under ``<tmp>/data/finetuning_data/``."""
    for source, name in copies:
        shutil.copytree(source, tmp_path / "data" / "finetuning_data" / name)


# ---------------------------------------------------------------------------
# Settings from the config's family sections
# ---------------------------------------------------------------------------

def test_each_family_reads_its_section_of_finetuning_json():
    config = FinetuningConfig.from_preset("small", ["mnli"])
    for section, settings_class in FAMILIES.items():
        assert {f.name for f in dataclasses.fields(settings_class)} == set(SPEC[section])
        settings = settings_class.from_config(config)
        assert dataclasses.asdict(settings) == SPEC[section], section
        assert settings == settings_class.defaults()
        assert getattr(config, section) == SPEC[section]
    # The family settings left the flat config: they are set in one place only.
    flat_fields = set(FinetuningConfig.hparam_names())
    assert not flat_fields & (set(SPEC["qa"]) | set(SPEC["glue"]) | set(SPEC["tagging"]))
    assert qa.QASettings.defaults(doc_stride=7).doc_stride == 7
    assert tagging.CONLL_OPTIONS.keys() == set(SPEC["tagging"])


def test_original_flat_hparams_map_into_their_sections():
    config = FinetuningConfig.from_preset(
        "small", ["squad"], '{"max_answer_length": 40, "doc_stride": 64.0, '
                            '"double_unordered": false}')
    assert config.qa == {**SPEC["qa"], "max_answer_length": 40, "doc_stride": 64}
    assert type(config.qa["doc_stride"]) is int
    assert config.glue == {"double_unordered": False}
    # A section is merged setting by setting, not replaced.
    config = FinetuningConfig.from_preset("small", ["squad"], {"qa": {"beam_size": 7},
                                                              "tagging": {"column": 2}})
    assert config.qa == {**SPEC["qa"], "beam_size": 7}
    assert config.tagging == {**SPEC["tagging"], "column": 2}
    # The flat shape (the trial record's, the original's) and back.
    flat = config.flat_dict()
    assert flat["beam_size"] == 7 and flat["double_unordered"] is True
    assert "qa" not in flat and "glue" not in flat and flat["tagging"] == config.tagging
    assert FinetuningConfig.from_dict(flat) == config
    assert FinetuningConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="'doc_stride' expects int, got 'x'"):
        FinetuningConfig.from_preset("small", ["squad"], {"doc_stride": "x"})
    with pytest.raises(ConfigError, match="'qa' expects an object of qa settings"):
        FinetuningConfig.from_preset("small", ["squad"], {"qa": 3})
    with pytest.raises(ConfigError, match="span_rule must be one of electra, typed"):
        tagging.TaggingSettings.defaults(span_rule="iob")


@pytest.mark.parametrize("hparams,fragments", [
    ('{"max_answer_lenght": 40}', ["unknown finetuning hparam 'max_answer_lenght'",
                                   "did you mean max_answer_length"]),
    ('{"qa": {"doc_strid": 40}}', ["unknown finetuning qa setting 'doc_strid'",
                                   "did you mean doc_stride"]),
])
def test_an_unknown_hparam_is_one_error_line(tmp_path, capsys, hparams, fragments):
    from electra_tf import run_finetuning
    status = run_finetuning.main([f"--data_dir={tmp_path}", "--task_names=squad",
                                  f"--hparams={hparams}"])
    one_error_line(status, capsys.readouterr().err, *fragments)
    assert not list(tmp_path.iterdir())  # stopped before anything was written


# ---------------------------------------------------------------------------
# A task is configured once, at construction
# ---------------------------------------------------------------------------

def the_old_doors_are_closed():
    assert not hasattr(Task, "options_from_run")
    assert list(inspect.signature(Task.build_head).parameters) == ["self"]
    assert list(inspect.signature(Task.write_test_outputs).parameters) == [
        "self", "predict", "directory"]


def test_the_task_api_takes_no_run_config():
    the_old_doors_are_closed()
    for cls in (glue.GlueTask, glue.ClassificationTask, glue.RegressionTask, qa.QATask,
                tagging.TaggingTask):
        assert "options_from_run" not in vars(cls)
        if "build_head" in vars(cls):
            assert list(inspect.signature(cls.build_head).parameters) == ["self"]
        if "write_test_outputs" in vars(cls):
            assert list(inspect.signature(cls.write_test_outputs).parameters) == [
                "self", "predict", "directory"]


def windows_by_hand(n_pieces, length, n_question, stride):
    """Spec 6.5 step 4: windows of L - len(question) - 3 pieces from 0, advancing by
    min(window, doc_stride) until the document's end is covered."""
    window = length - n_question - 3
    start, count = 0, 0
    while True:
        count += 1
        if start + min(window, n_pieces - start) >= n_pieces:
            return count
        start += min(window, stride)


def test_a_qa_task_built_once_uses_its_settings(tmp_path, tokenizer):
    with_data(tmp_path, (DATA / "qa" / "squad", "squad"))
    hparams = {"max_seq_length": 40, "max_query_length": 8, "doc_stride": 5, "beam_size": 3,
               "joint_prediction": False, "answerable_weight": 0.25}
    config = FinetuningConfig.from_preset("small", ["squad"], hparams)
    [task] = build_tasks(config, run_options(tmp_path), tokenizer)
    assert task.settings == qa.QASettings.defaults(
        max_query_length=8, doc_stride=5, beam_size=3, joint_prediction=False,
        answerable_weight=0.25)
    assert task.results_dir == str(tmp_path / "results") and task.task_id == 0
    config.qa["doc_stride"] = 1000  # after construction: the task keeps what it was given
    example = max(task.get_examples("dev"), key=lambda e: len(e.doc_tokens))
    pieces = sum(len(tokenizer.tokenize(word)) for word in example.doc_tokens)
    question = min(8, len(tokenizer.tokenize(example.question_text)))
    expected = windows_by_hand(pieces, 40, question, 5)
    assert expected > 2
    assert len(task.featurize(example, False)) == expected
    assert task.cache_options()["doc_stride"] == 5
    head = task.build_head()
    assert (head.joint, head.beam_size, head.answerable_weight) == (False, 3, 0.25)
    # Another stride, another task: another count.
    wide = get_task("squad", str(tmp_path / "data" / "finetuning_data"), tokenizer, 40,
                    settings=task.settings.replace(doc_stride=20))
    assert len(wide.featurize(example, False)) == windows_by_hand(pieces, 40, question, 20)
    assert windows_by_hand(pieces, 40, question, 20) < expected


def test_glue_and_tagging_tasks_get_their_settings_and_the_runs_directories(tmp_path,
                                                                            tokenizer):
    with_data(tmp_path, (DATA / "glue" / "mrpc", "mrpc"), (DATA / "tagging" / "ner", "ner"),
              (DATA / "tagging" / "chunk", "chunk"))
    config = FinetuningConfig.from_preset(
        "small", ["mrpc", "conll:ner:keep_last_unterminated=false", "chunk"],
        {"double_unordered": False, "tagging": {"span_rule": "electra", "column": 2}})
    options = run_options(tmp_path, check_glue_columns=False)
    mrpc, ner, chunk = build_tasks(config, options, tokenizer)
    assert mrpc.settings == glue.GlueSettings(double_unordered=False)
    assert len(mrpc.get_examples("train")) == 3  # 3 rows, not doubled
    assert mrpc.check_columns is False and mrpc.data_source == "tsv"
    assert [t.task_id for t in (mrpc, ner, chunk)] == [0, 1, 2]
    # conll: the run's tagging section, the name's own option winning
    assert (ner.column, ner.span_rule, ner.keep_last_unterminated, ner.lower_case) == (
        2, "electra", False, True)
    # chunk reads CoNLL-2000 as the original whatever the section says
    assert (chunk.column, chunk.span_rule, chunk.keep_last_unterminated) == (
        -1, "electra", False)
    assert chunk.label_mapping_dir == str(tmp_path / "cache")
    with pytest.raises(ValueError, match="--data_source=tfds is available for GLUE tasks "
                                         "only, not 'chunk'"):
        build_tasks(FinetuningConfig.from_preset("small", ["chunk"]),
                    run_options(tmp_path, data_source="tfds"), tokenizer)


# ---------------------------------------------------------------------------
# One feature store for the driver
# ---------------------------------------------------------------------------

def counting_reads(task, monkeypatch):
    reads = []
    real = task.get_examples

    def get_examples(split):
        reads.append(split)
        return real(split)
    monkeypatch.setattr(task, "get_examples", get_examples)
    return reads


def test_the_feature_store_caches_and_reuses(tmp_path, tokenizer, monkeypatch):
    with_data(tmp_path, (DATA / "glue" / "mrpc", "mrpc"), (DATA / "glue" / "sts", "sts"))
    config = FinetuningConfig.from_preset("small", ["mrpc", "sts"], {
        "max_seq_length": 24, "train_batch_size": 4, "eval_batch_size": 3})
    options = run_options(tmp_path)
    said = []
    tasks = build_tasks(config, options, tokenizer)
    store = FeatureStore.for_run(tasks, config, options, say=said.append)
    reads = counting_reads(tasks[0], monkeypatch)
    train = store.features("train")
    # 3 MRPC + 3 STS rows, each also swapped (double_unordered): 12 features, 3 batches of 4
    assert train.path == str(tmp_path / "cache" / "mrpc_sts_train.tfrecord")
    assert train.count == 12 and reads == ["train"]
    assert store.features("train") is train and reads == ["train"]  # kept for the run
    dev = store.features("dev")
    # 2 MRPC and 3 STS dev rows (of 4, one malformed), padded to a multiple of 3
    assert dev.count == 6
    one = store.features("dev", tasks[1])
    assert one.path.endswith("sts_dev.tfrecord") and one.path != dev.path
    assert store.specs.keys() >= {"input_ids", "mrpc_label_ids", "sts_targets"}

    # A new store on the same directory (the next run) finds the files fresh.
    tasks = build_tasks(config, options, tokenizer)
    said.clear()
    again = FeatureStore.for_run(tasks, config, options, say=said.append)
    reads = counting_reads(tasks[0], monkeypatch)
    assert again.features("train") == train and reads == []
    assert said == [f"features of mrpc_sts_train: reusing {train.path} (mrpc 6 examples, "
                    "sts 6 examples, 12 features)"]
    # Other settings, other features: rebuilt, saying why.
    config = FinetuningConfig.from_preset("small", ["mrpc", "sts"], {
        "max_seq_length": 24, "train_batch_size": 4, "eval_batch_size": 3,
        "glue": {"double_unordered": False}})
    said.clear()
    other = FeatureStore.for_run(build_tasks(config, options, tokenizer), config, options,
                                 say=said.append)
    assert other.features("train").count == 8  # 6 rows, padded to a multiple of 4
    assert "mrpc double_unordered True -> False" in said[0] and "rebuilding" in said[0]
