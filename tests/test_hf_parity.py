"""Numerical parity with an independent implementation: Hugging Face transformers' PyTorch ELECTRA.

The golden inputs/outputs were produced by ``tests/data/hf_golden/make_hf_golden.py``
(torch + transformers, not needed here). Weights are regenerated with the
numpy-only ``golden_weights.py`` and mapped HF name -> original (TF1) name by the
table below, written independently of electra_tf's own naming code.
"""

import json
import re
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import DATA
from electra_tf import Discriminator, Generator, TransformerConfig
from electra_tf.checkpoints import assign_original_weights

sys.path.insert(0, str(DATA / "hf_golden"))
import golden_weights  # noqa: E402

TOLERANCE = 1e-5  # max abs diff in float32 (issue 2)

_LAYER_PARTS = {
    "attention.self.query": "attention/self/query",
    "attention.self.key": "attention/self/key",
    "attention.self.value": "attention/self/value",
    "attention.output.dense": "attention/output/dense",
    "attention.output.LayerNorm": "attention/output/LayerNorm",
    "intermediate.dense": "intermediate/dense",
    "output.dense": "output/dense",
    "output.LayerNorm": "output/LayerNorm",
}


def hf_to_original(key: str, scope: str) -> str:
    """HF state_dict key -> TF1 name, for an encoder placed under ``scope``."""
    m = re.match(r"electra\.encoder\.layer\.(\d+)\.(.+)\.(weight|bias)$", key)
    if m:
        part, kind = _LAYER_PARTS[m.group(2)], m.group(3)
        leaf = {"weight": "gamma", "bias": "beta"}[kind] if "LayerNorm" in part else \
            {"weight": "kernel", "bias": "bias"}[kind]
        return f"{scope}/encoder/layer_{m.group(1)}/{part}/{leaf}"
    fixed = {
        "electra.embeddings.word_embeddings.weight": f"{scope}/embeddings/word_embeddings",
        "electra.embeddings.position_embeddings.weight": f"{scope}/embeddings/position_embeddings",
        "electra.embeddings.token_type_embeddings.weight":
            f"{scope}/embeddings/token_type_embeddings",
        "electra.embeddings.LayerNorm.weight": f"{scope}/embeddings/LayerNorm/gamma",
        "electra.embeddings.LayerNorm.bias": f"{scope}/embeddings/LayerNorm/beta",
        "electra.embeddings_project.weight": f"{scope}/embeddings_project/kernel",
        "electra.embeddings_project.bias": f"{scope}/embeddings_project/bias",
        "discriminator_predictions.dense.weight": "discriminator_predictions/dense/kernel",
        "discriminator_predictions.dense.bias": "discriminator_predictions/dense/bias",
        "discriminator_predictions.dense_prediction.weight":
            "discriminator_predictions/dense_1/kernel",
        "discriminator_predictions.dense_prediction.bias": "discriminator_predictions/dense_1/bias",
        "generator_predictions.dense.weight": "generator_predictions/dense/kernel",
        "generator_predictions.dense.bias": "generator_predictions/dense/bias",
        "generator_predictions.LayerNorm.weight": "generator_predictions/LayerNorm/gamma",
        "generator_predictions.LayerNorm.bias": "generator_predictions/LayerNorm/beta",
        "generator_lm_head.bias": "generator_predictions/output_bias",
    }
    return fixed[key]


def to_original(weights: dict, scope: str) -> dict:
    out = {}
    for key, value in weights.items():
        is_linear = value.ndim == 2 and "embeddings." not in key.replace("embeddings_project", "")
        out[hf_to_original(key, scope)] = value.T if is_linear else value
    return out


def transformer_config(hf_json: str) -> TransformerConfig:
    hf = json.loads(hf_json)
    keys = ["vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
            "intermediate_size", "hidden_act", "hidden_dropout_prob",
            "attention_probs_dropout_prob", "max_position_embeddings", "type_vocab_size",
            "initializer_range", "embedding_size"]
    return TransformerConfig.from_dict({k: hf[k] for k in keys})


def fixture_weights(z, prefix: str) -> dict:
    shapes = {k: tuple(v) for k, v in json.loads(str(z[f"{prefix}_shapes_json"])).items()}
    weights = golden_weights.make_weights(shapes, int(z[f"{prefix}_seed"]))
    assert golden_weights.weights_sha256(weights) == str(z[f"{prefix}_w_sha256"]), \
        "regenerated weights differ from those the fixture was made with"
    return weights


@pytest.fixture(scope="module", params=["tiny", "small_shaped"])
def golden(request):
    return request.param, np.load(DATA / "hf_golden" / f"{request.param}.npz")


def inputs(z):
    return {"input_ids": tf.constant(z["input_ids"]),
            "input_mask": tf.constant(z["attention_mask"]),
            "segment_ids": tf.constant(z["token_type_ids"])}


def max_diff(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


def test_discriminator_matches_transformers(golden):
    name, z = golden
    model = Discriminator(transformer_config(str(z["disc_config_json"])))
    model.build()
    weights = fixture_weights(z, "disc")
    if name == "tiny":  # the stored weights are those regenerated
        for key, value in weights.items():
            np.testing.assert_array_equal(value, z[f"disc_w/{key}"])
    report = assign_original_weights(to_original(weights, "electra"), model)
    assert not report.unused and len(report.loaded) == len(weights)
    out = model(inputs(z), training=False)
    assert max_diff(out["logits"], z["disc_logits"]) <= TOLERANCE
    if name == "tiny":
        assert len(out["hidden_states"]) == z["disc_hidden_states"].shape[0]
        for ours, theirs in zip(out["hidden_states"], z["disc_hidden_states"]):
            assert max_diff(ours, theirs) <= TOLERANCE
    else:
        assert max_diff(out["hidden_states"][0], z["disc_hidden_first"]) <= TOLERANCE
        assert max_diff(out["sequence_output"], z["disc_hidden_last"]) <= TOLERANCE
    np.testing.assert_array_equal(out["pooled_output"], out["sequence_output"][:, 0])


def test_generator_matches_transformers(golden):
    _, z = golden
    config = transformer_config(str(z["gen_config_json"]))
    model = Generator(config, embeddings=None)  # standalone: its own embedding block
    model.build()
    weights = fixture_weights(z, "gen")
    assign_original_weights(to_original(weights, "generator"), model)
    out = model(inputs(z), training=False)
    assert max_diff(out["sequence_output"], z["gen_hidden_last"]) <= TOLERANCE
    assert max_diff(out["logits"], z["gen_logits"]) <= TOLERANCE
    # Logits at chosen positions equal the full logits gathered there.
    positions = tf.constant([[1, 3, 3], [0, 5, 2]])
    picked = model({**inputs(z), "masked_lm_positions": positions})["logits"]
    expected = np.take_along_axis(z["gen_logits"], positions.numpy()[..., None], axis=1)
    assert max_diff(picked, expected) <= TOLERANCE


def test_parity_holds_under_xla(golden):
    _, z = golden
    model = Discriminator(transformer_config(str(z["disc_config_json"])))
    model.build()
    assign_original_weights(to_original(fixture_weights(z, "disc"), "electra"), model)
    run = tf.function(lambda x: model(x, training=False)["logits"], jit_compile=True)
    assert max_diff(run(inputs(z)), z["disc_logits"]) <= TOLERANCE
