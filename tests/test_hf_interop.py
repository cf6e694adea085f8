"""Hugging Face transformers interchange without torch, and the converter CLI (issue 6).

The fixtures in ``tests/data/hf_interop/`` were written by transformers itself
(``make_hf_interop_golden.py``, torch not needed here): a tied
ElectraForPreTraining / ElectraForMaskedLM pair (``pair/``), a bare ElectraModel
(``bare/``, gelu_new, 3 token types, cased), and transformers' outputs on a fixed
batch (``golden.npz``). Whether transformers loads OUR exports was checked by hand
with ``check_transformers_loads_export.py``.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import DATA, ROOT
from safetensors.numpy import load_file, save_file

from electra_tf import (
    CheckpointError,
    PretrainingConfig,
    build_pretraining_models,
    convert,
    loading,
    original_variables,
    save_original_checkpoint,
)
from electra_tf.formats import detect_format, hf

GOLDEN = DATA / "hf_interop"
TOLERANCE = 1e-5
# Keys a transformers ELECTRA config.json must carry for the model to be rebuilt; each
# is checked to be in transformers' own config.json below, so the list is not ours alone.
REQUIRED_CONFIG_KEYS = (
    "architectures", "model_type", "vocab_size", "embedding_size", "hidden_size",
    "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
    "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings",
    "type_vocab_size", "initializer_range", "layer_norm_eps", "pad_token_id",
    "tie_word_embeddings")


@pytest.fixture(scope="module")
def z():
    return np.load(GOLDEN / "golden.npz")


def batch(z, types="token_type_ids"):
    return {"input_ids": tf.constant(z["input_ids"]),
            "input_mask": tf.constant(z["attention_mask"]),
            "segment_ids": tf.constant(z[types])}


def max_diff(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def copy_golden(tmp_path, name):
    target = tmp_path / name.replace("/", "_")
    shutil.copytree(GOLDEN / name, target)
    return target


def edit_config(directory, **changes):
    path = directory / "config.json"
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


# ---------------------------------------------------------------------------
# (a) our import computes what transformers computed
# ---------------------------------------------------------------------------

def test_discriminator_import_matches_transformers(z):
    model = loading.load_pretrained(GOLDEN / "pair" / "discriminator",
                                    require=("discriminator_head", "vocab"))
    assert model.generator is None and model.weights.format == "hf"
    out = model.discriminator(batch(z))
    assert max_diff(out["logits"], z["discriminator_logits"]) <= TOLERANCE
    assert max_diff(out["sequence_output"], z["discriminator_last_hidden"]) <= TOLERANCE
    c = model.config.discriminator_config()
    # heads and I come from config.json (shapes cannot tell; ELECTRA's rule would give 1, 128)
    assert (c.num_attention_heads, c.intermediate_size, c.max_position_embeddings) == (4, 37, 32)
    assert os.path.basename(model.vocab_file) == "vocab.txt"


def test_generator_import_is_the_mlm_only_network(z):
    model = loading.load_pretrained(GOLDEN / "pair" / "generator", require=("generator",))
    assert model.discriminator is None
    assert all(n.startswith(("electra/", "generator_predictions/")) for n in model.weights.values)
    assert "electra/embeddings_project/kernel" in model.weights.values  # E=16 -> G=8
    logits = model.generator(batch(z))["logits"]
    assert max_diff(logits, z["generator_logits"]) <= TOLERANCE


def test_bare_model_import_matches_transformers(z):
    model = loading.load_pretrained(GOLDEN / "bare")
    assert not model.has_discriminator_head and model.generator is None
    c = model.config.discriminator_config()
    assert (c.type_vocab_size, c.hidden_act, c.embedding_size) == (3, "gelu_approximate", 32)
    assert model.config.do_lower_case is False  # from tokenizer_config.json
    out = model.discriminator(batch(z, "bare_token_type_ids"))
    assert len(out["hidden_states"]) == len(z["bare_hidden_states"])
    for ours, theirs in zip(out["hidden_states"], z["bare_hidden_states"]):
        assert max_diff(ours, theirs) <= TOLERANCE


def test_pair_directory_is_one_tied_electra_model(z):
    model = loading.load_pretrained(GOLDEN / "pair")
    assert model.generator.encoder.embeddings is model.discriminator.encoder.embeddings
    g = model.config.generator_config()
    assert (g.hidden_size, g.num_hidden_layers, g.embedding_size) == (8, 2, 16)
    assert not any(n.startswith("generator/embeddings/") for n in model.weights.values)
    assert max_diff(model.discriminator(batch(z))["logits"], z["discriminator_logits"]) <= TOLERANCE
    assert max_diff(model.generator(batch(z))["logits"], z["generator_logits"]) <= TOLERANCE


def test_saved_lm_head_copy_is_accepted_when_tied_and_refused_when_not(tmp_path, z):
    directory = copy_golden(tmp_path, "pair/generator")
    tensors = load_file(str(directory / "model.safetensors"))
    embeddings = tensors["electra.embeddings.word_embeddings.weight"]
    save_file({**tensors, "generator_lm_head.weight": embeddings},
              str(directory / "model.safetensors"))
    logits = loading.load_pretrained(directory).generator(batch(z))["logits"]
    assert max_diff(logits, z["generator_logits"]) <= TOLERANCE
    save_file({**tensors, "generator_lm_head.weight": embeddings + 1.0},
              str(directory / "model.safetensors"))
    with pytest.raises(CheckpointError, match="generator_lm_head.weight differs"):
        hf.read(directory)


def test_sharded_and_float16_safetensors_are_read(tmp_path):
    directory = copy_golden(tmp_path, "pair/discriminator")
    tensors = load_file(str(directory / "model.safetensors"))
    os.remove(directory / "model.safetensors")
    keys = sorted(tensors)
    half = {k: tensors[k].astype(np.float16) for k in keys}
    save_file({k: half[k] for k in keys[:10]}, str(directory / "model-00001-of-00002.safetensors"))
    save_file({k: half[k] for k in keys[10:]}, str(directory / "model-00002-of-00002.safetensors"))
    weight_map = {k: f"model-0000{1 if i < 10 else 2}-of-00002.safetensors"
                  for i, k in enumerate(keys)}
    (directory / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    values = hf.read(directory).values
    np.testing.assert_array_equal(values["electra/embeddings/word_embeddings"],
                                  half["electra.embeddings.word_embeddings.weight"].astype(np.float32))
    np.testing.assert_array_equal(values["discriminator_predictions/dense_1/kernel"],
                                  half["discriminator_predictions.dense_prediction.weight"].T)


# ---------------------------------------------------------------------------
# (b) exports read back exactly: tf1 <-> hf <-> keras
# ---------------------------------------------------------------------------

def assert_same_values(expected: dict, got: dict):
    assert sorted(got) == sorted(expected)
    for name, value in expected.items():
        assert got[name].dtype == np.float32, name
        np.testing.assert_array_equal(got[name], value, err_msg=name)


@pytest.mark.parametrize("source", ["pair", "pair/generator", "bare"])
def test_hf_tf1_keras_hf_round_trip_is_exact(tmp_path, source):
    original = hf.read(GOLDEN / source)
    steps = [("tf1", tmp_path / "tf1"), ("keras", tmp_path / "keras"), ("hf", tmp_path / "hf")]
    previous = GOLDEN / source
    for fmt, output in steps:
        convert.convert(previous, output, fmt)
        assert detect_format(output) == fmt
        weights = loading.read_weights(output)
        assert_same_values(original.values, weights.values)
        assert weights.hparams["model_hparam_overrides"]["num_attention_heads"] == \
            original.hparams["model_hparam_overrides"]["num_attention_heads"]
        with open(weights.vocab_file, "rb") as ours, open(original.vocab_file, "rb") as theirs:
            assert ours.read() == theirs.read()
        previous = output
    # What we write is what transformers wrote, tensor for tensor.
    subdirs = ["discriminator", "generator"] if source == "pair" else [""]
    for sub in subdirs:
        theirs = load_file(str(GOLDEN / source / sub / "model.safetensors"))
        ours = load_file(str(tmp_path / "hf" / sub / "model.safetensors"))
        assert sorted(ours) == sorted(theirs)
        for key in theirs:
            np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)


def random_models(hparams):
    config = PretrainingConfig.from_preset("small", {
        "vocab_size": 60, "embedding_size": 16, "max_seq_length": 16,
        "model_hparam_overrides": {"hidden_size": 32, "num_hidden_layers": 2,
                                   "max_position_embeddings": 20}, **hparams})
    models = build_pretraining_models(config)
    rng = np.random.default_rng(5)
    for variable in models.original_variables().values():
        variable.assign(rng.normal(0, 0.1, variable.shape).astype(np.float32))
    return config, models


@pytest.mark.parametrize("hparams,hf_dirs", [
    ({"generator_hidden_size": 0.75}, ["discriminator", "generator"]),
    ({"generator_hidden_size": 0.5, "untied_generator_embeddings": True},
     ["discriminator", "generator"]),
    ({"electra_objective": False}, ["."]),  # MLM-only: one ElectraForMaskedLM
], ids=["tied", "untied", "mlm_only"])
def test_our_tf1_checkpoint_round_trips_through_hf_exactly(tmp_path, hparams, hf_dirs):
    config, models = random_models(hparams)
    save_original_checkpoint(str(tmp_path / "tf1" / "model.ckpt-7"), *models.models,
                             global_step=7)
    (tmp_path / "tf1" / "pretraining_config.json").write_text(json.dumps(config.to_dict()))
    expected = {n: v.numpy() for n, v in models.original_variables().items()}
    written = convert.convert(tmp_path / "tf1", tmp_path / "hf", "hf")
    assert sorted(os.path.normpath(p) for p in written) == \
        sorted(os.path.normpath(tmp_path / "hf" / d) for d in hf_dirs)
    convert.convert(tmp_path / "hf", tmp_path / "back", "tf1")
    assert_same_values(expected, loading.read_weights(tmp_path / "back").values)
    convert.convert(tmp_path / "tf1", tmp_path / "keras", "keras")
    keras_weights = loading.read_weights(tmp_path / "keras")
    assert keras_weights.global_step == 7
    assert_same_values(expected, keras_weights.values)


def test_headless_pair_round_trips_as_electra_model_and_generator(tmp_path):
    pair = tmp_path / "pair"
    shutil.copytree(GOLDEN / "pair", pair)
    disc = pair / "discriminator"
    tensors = load_file(str(disc / "model.safetensors"))
    save_file({k.removeprefix("electra."): v for k, v in tensors.items()
               if not k.startswith("discriminator_predictions.")}, str(disc / "model.safetensors"))
    edit_config(disc, architectures=["ElectraModel"])
    model = loading.load_pretrained(pair)
    assert not model.has_discriminator_head and model.generator is not None
    written = convert.convert(pair, tmp_path / "hf", "hf")
    assert sorted(written.values()) == ["transformers ElectraForMaskedLM",
                                        "transformers ElectraModel"]
    assert_same_values(model.weights.values, loading.read_weights(tmp_path / "hf").values)


def test_object_based_training_checkpoint_is_refused_clearly(tmp_path):
    tf.train.Checkpoint(step=tf.Variable(3)).write(str(tmp_path / "run" / "ckpt-3"))
    with pytest.raises(CheckpointError, match="object-based training checkpoint.*<model_dir>/tf1"):
        loading.read_weights(tmp_path / "run")


def test_keras_format_restores_with_tf_train_checkpoint(tmp_path, z):
    convert.convert(GOLDEN / "pair", tmp_path / "keras", "keras")
    config = PretrainingConfig.from_preset("small", {
        k: v for k, v in json.loads((tmp_path / "keras" / "pretraining_config.json").read_text())
        .items() if k != "max_predictions_per_seq"})
    models = build_pretraining_models(config)
    prefix = tf.train.latest_checkpoint(str(tmp_path / "keras"))
    status = tf.train.Checkpoint(weights=original_variables(*models.models)).read(prefix)
    status.assert_consumed()
    assert max_diff(models.discriminator(batch(z))["logits"], z["discriminator_logits"]) <= \
        TOLERANCE


def test_electric_exports_only_its_discriminator(tmp_path):
    _, models = random_models({"electric_objective": True, "electra_objective": False})
    with pytest.raises(CheckpointError, match="two-tower"):
        hf.write_hf_directory(models, tmp_path / "both", kind="both")
    written = hf.write_hf_directory(models, tmp_path / "auto")
    assert list(written.values()) == ["ElectraForPreTraining"]
    assert not (tmp_path / "both").exists()


# ---------------------------------------------------------------------------
# (c) what we write is what transformers expects
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["pair/discriminator", "pair/generator", "bare"])
def test_written_config_has_every_key_transformers_writes(tmp_path, source):
    theirs = json.loads((GOLDEN / source / "config.json").read_text())
    assert set(REQUIRED_CONFIG_KEYS) <= set(theirs)
    hf.write_hf_directory(loading.load_pretrained(GOLDEN / source), tmp_path / "out")
    ours = json.loads((tmp_path / "out" / "config.json").read_text())
    assert ours["model_type"] == "electra"
    theirs.pop("transformers_version")
    assert ours == theirs  # every ElectraConfig field transformers wrote, same values
    tokenizer = json.loads((tmp_path / "out" / "tokenizer_config.json").read_text())
    their_tokenizer = json.loads((GOLDEN / source / "tokenizer_config.json").read_text())
    assert tokenizer["tokenizer_class"] == "ElectraTokenizer"
    assert tokenizer["do_lower_case"] == their_tokenizer["do_lower_case"]
    special = json.loads((tmp_path / "out" / "special_tokens_map.json").read_text())
    assert special == {k: their_tokenizer[k] for k in special}
    assert (tmp_path / "out" / "vocab.txt").read_bytes() == \
        (GOLDEN / source / "vocab.txt").read_bytes()


# ---------------------------------------------------------------------------
# (d) errors
# ---------------------------------------------------------------------------

def test_missing_safetensors_is_one_clear_error(tmp_path):
    directory = copy_golden(tmp_path, "pair/discriminator")
    os.remove(directory / "model.safetensors")
    (directory / "pytorch_model.bin").write_bytes(b"not read")
    assert hf.matches(directory)
    with pytest.raises(CheckpointError, match=r"no model\.safetensors in .*pytorch_model\.bin.*"
                                              r"save_pretrained"):
        loading.load_pretrained(directory)


@pytest.mark.parametrize("source,changes,pattern", [
    ("pair/discriminator", {"hidden_act": "silu"}, r"config\.json: hidden_act 'silu'"),
    ("pair/generator", {"hidden_act": "gelu_new"}, r"ElectraForMaskedLM .*gelu"),
    ("pair/discriminator", {"layer_norm_eps": 1e-5}, r"layer_norm_eps"),
    ("pair/discriminator", {"architectures": ["ElectraForSequenceClassification"]},
     r"architecture 'ElectraForSequenceClassification'"),
    ("pair/discriminator", {"hidden_size": 64},
     (r"model\.safetensors does not match .*config\.json \(.*hidden_size=64.*\): .*"
      r"dense\.weight has shape \[32, 32\], config\.json implies \[64, 64\]")),
    ("bare", {"num_hidden_layers": 2}, r"lacks 16 tensor\(s\) of ElectraModel"),
    ("bare", {"architectures": ["ElectraForPreTraining"]}, r"lacks 4 tensor"),
    ("pair/discriminator", {"architectures": ["ElectraModel"]},
     r"holds tensors that ElectraModel does not have: discriminator_predictions"),
], ids=["hidden_act", "mlm_gelu_new", "eps", "architecture", "shapes", "missing", "head",
        "unexpected"])
def test_unsupported_or_mismatched_config_is_one_clear_error(tmp_path, source, changes, pattern):
    directory = copy_golden(tmp_path, source)
    edit_config(directory, **changes)
    with pytest.raises(CheckpointError, match=pattern):
        loading.load_pretrained(directory)


def test_corrupt_safetensors_is_one_clear_error(tmp_path):
    directory = copy_golden(tmp_path, "bare")
    data = (directory / "model.safetensors").read_bytes()
    (directory / "model.safetensors").write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cannot read .*model\.safetensors as safetensors"):
        hf.read(directory)


def test_writer_refuses_a_non_empty_output_and_leaves_it_alone(tmp_path):
    model = loading.load_pretrained(GOLDEN / "bare")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        hf.write_hf_directory(model, tmp_path / "out")
    assert os.listdir(tmp_path / "out") == ["keep.txt"]
    hf.write_hf_directory(model, tmp_path / "out", overwrite=True)
    assert sorted(os.listdir(tmp_path / "out")) == [
        "config.json", "model.safetensors", "special_tokens_map.json", "tokenizer_config.json",
        "vocab.txt"]
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no temporaries left


def run_cli(*args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "electra_tf.convert", *args], check=False,
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def assert_one_error_line(result, pattern):
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and result.stderr.strip().splitlines()[-1] == errors[0], result.stderr
    assert re.search(pattern, errors[0]), errors[0]


def test_cli_argument_errors(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    bare = str(GOLDEN / "bare")
    inside = copy_golden(tmp_path / "full", "bare")
    cases = [
        (["--input", str(tmp_path / "nope"), "--output", str(tmp_path / "o"), "--to", "hf"],
         r"^error: input not found: .*nope$"),
        (["--input", bare, "--output", str(tmp_path / "o"), "--to", "onnx"],
         r"^error: --to must be one of tf1, hf, keras, keras_hub, got 'onnx'$"),
        (["--input", bare, "--output", str(tmp_path / "full"), "--to", "tf1"],
         r"^error: --output .*full holds 2 entries \(bare, x\), which electra_tf.convert "
         r"did not write"),  # issue 23: never replaced, --overwrite or not
        (["--input", str(inside), "--output", str(tmp_path / "full"), "--to", "tf1",
          "--overwrite"],
         r"^error: --output .* contains --input"),
    ]
    for args, pattern in cases:
        result = run_cli(*args)
        assert result.stderr.strip().count("\n") == 0, result.stderr  # before TF is imported
        assert_one_error_line(result, pattern)
    assert sorted(os.listdir(tmp_path / "full")) == ["bare", "x"]


def test_cli_converts_and_reports_bad_weights_in_one_line(tmp_path):
    result = run_cli("--input", str(GOLDEN / "pair"), "--output", str(tmp_path / "tf1"),
                     "--to", "tf1")
    assert result.returncode == 0, result.stderr
    assert "wrote " in result.stdout and "discriminator + generator" in result.stdout
    assert_same_values(hf.read(GOLDEN / "pair").values,
                       loading.read_weights(tmp_path / "tf1").values)
    bad = copy_golden(tmp_path, "bare")
    edit_config(bad, hidden_act="silu")
    result = run_cli("--input", str(bad), "--output", str(tmp_path / "out"), "--to", "keras")
    assert_one_error_line(result, r"^error: .*config\.json: hidden_act 'silu' is not supported")
    assert not (tmp_path / "out").exists()


def test_main_runs_in_process_with_the_cli_convention(tmp_path, capsys):
    out = tmp_path / "tf1"
    assert convert.main(["convert", f"--input={GOLDEN / 'bare'}", f"--output={out}",
                         "--to=tf1"]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out}")
    assert_same_values(hf.read(GOLDEN / "bare").values,
                       loading.read_weights(out).values)
    # Called again in the same process (fresh flags every call): a user error is one line.
    assert convert.main(["--input", str(GOLDEN / "bare"), "--output", str(out),
                         "--to", "tf1"]) == 1
    err = capsys.readouterr().err
    assert re.fullmatch(r"error: output directory .*tf1 exists and is not empty: pass "
                        r"--overwrite.*\n", err), err
    assert convert.main(["convert", "--input=x", "--output=y", "--to=tf1", "stray"]) == 1
    assert "error: unexpected arguments 'stray'" in capsys.readouterr().err
    assert convert.main(["convert", "--no_such_flag"]) == 2
    assert convert.main(["convert", "--help"]) == 0
    assert "--hf_kind" in capsys.readouterr().out
