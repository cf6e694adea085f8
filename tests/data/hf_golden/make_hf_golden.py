"""Generate golden ELECTRA outputs from Hugging Face transformers (PyTorch, CPU).

Writes ``tiny.npz`` and ``small_shaped.npz`` next to this file (or into
``--out-dir``). The TF test suite only reads the .npz files and imports the
numpy-only ``golden_weights`` module; it never needs torch.

Run in a separate venv (see README.md):

    /tmp/hfvenv/bin/python tests/data/hf_golden/make_hf_golden.py

Besides writing the fixtures, the script checks the torch outputs against an
independent float64 NumPy forward pass written from the TF1 semantics
(additive key mask ``(1 - mask) * -10000``, exact-erf GELU, post-LayerNorm,
eps 1e-12), so the fixtures are known to encode the reference behaviour.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import transformers
from transformers import ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import golden_weights  # noqa: E402  (numpy-only sibling module)

BATCH = 2
PAD_LAST = 4  # row 1 has its last PAD_LAST positions padded

COMMON = dict(
    type_vocab_size=2,
    hidden_act="gelu",  # exact erf GELU
    layer_norm_eps=1e-12,
    hidden_dropout_prob=0.1,  # irrelevant: models run in eval()
    attention_probs_dropout_prob=0.1,
    pad_token_id=0,
    attn_implementation="eager",
)

FIXTURES = {
    "tiny": dict(
        seq_len=12,
        input_seed=20240101,
        disc_seed=1001,
        gen_seed=2002,
        store_weights=True,
        all_hidden=True,
        disc=dict(vocab_size=99, embedding_size=16, hidden_size=32, num_hidden_layers=2,
                  num_attention_heads=4, intermediate_size=37, max_position_embeddings=40),
        gen=dict(vocab_size=99, embedding_size=16, hidden_size=16, num_hidden_layers=2,
                 num_attention_heads=2, intermediate_size=64, max_position_embeddings=40),
    ),
    "small_shaped": dict(
        seq_len=20,
        input_seed=20240202,
        disc_seed=3003,
        gen_seed=4004,
        store_weights=False,
        all_hidden=False,
        disc=dict(vocab_size=1000, embedding_size=128, hidden_size=256, num_hidden_layers=12,
                  num_attention_heads=4, intermediate_size=1024, max_position_embeddings=512),
        gen=dict(vocab_size=1000, embedding_size=128, hidden_size=64, num_hidden_layers=12,
                 num_attention_heads=1, intermediate_size=256, max_position_embeddings=512),
    ),
}


# ----------------------------------------------------------------------------
# inputs
# ----------------------------------------------------------------------------
def make_inputs(vocab: int, seq_len: int, seed: int):
    rng = np.random.default_rng(seed)
    input_ids = rng.integers(0, vocab, size=(BATCH, seq_len), dtype=np.int32)
    attention_mask = np.ones((BATCH, seq_len), dtype=np.int32)
    attention_mask[1, seq_len - PAD_LAST:] = 0
    token_type_ids = np.zeros((BATCH, seq_len), dtype=np.int32)
    token_type_ids[0, seq_len // 2:] = 1                 # segment B runs to the end
    token_type_ids[1, 3:seq_len - PAD_LAST - 1] = 1      # segment B in the middle, 0 again before/in padding
    return input_ids, attention_mask, token_type_ids


# ----------------------------------------------------------------------------
# models
# ----------------------------------------------------------------------------
def build(model_cls, cfg_kwargs: dict, seed: int, ties: dict):
    config = ElectraConfig(**COMMON, **cfg_kwargs)
    model = model_cls(config)
    model.eval()
    assert model.config._attn_implementation == "eager", model.config._attn_implementation

    sd = model.state_dict()
    shapes = {k: tuple(v.shape) for k, v in sd.items() if k not in ties}
    weights = golden_weights.make_weights(shapes, seed)
    full = golden_weights.apply_ties(weights, ties)
    assert sorted(full) == sorted(sd), set(full) ^ set(sd)
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in full.items()}, strict=True)

    # every tensor now holds exactly our numpy values, ties intact
    sd = model.state_dict()
    for k, v in full.items():
        assert np.array_equal(sd[k].numpy(), v), k
    for alias, target in ties.items():
        assert sd[alias].data_ptr() == sd[target].data_ptr(), (alias, target)
    return model, config, weights


def run_torch(model, input_ids, attention_mask, token_type_ids):
    with torch.no_grad():
        out = model(
            input_ids=torch.from_numpy(input_ids.astype(np.int64)),
            attention_mask=torch.from_numpy(attention_mask.astype(np.int64)),
            token_type_ids=torch.from_numpy(token_type_ids.astype(np.int64)),
            output_hidden_states=True,
            return_dict=True,
        )
    logits = out.logits.numpy().astype(np.float32)
    hidden = np.stack([h.numpy() for h in out.hidden_states]).astype(np.float32)
    return logits, hidden


# ----------------------------------------------------------------------------
# independent float64 reference (TF1 semantics) used only as a cross-check
# ----------------------------------------------------------------------------
def _ln(x, g, b, eps=1e-12):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


_erf = np.vectorize(math.erf)


def _gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _dense(x, w, p):
    return x @ w[p + ".weight"].T + w[p + ".bias"]


def ref_encoder(w, cfg, input_ids, attention_mask, token_type_ids):
    w = {k: v.astype(np.float64) for k, v in w.items()}
    L = input_ids.shape[1]
    e = "electra.embeddings."
    x = w[e + "word_embeddings.weight"][input_ids]
    x = x + w[e + "token_type_embeddings.weight"][token_type_ids]
    x = x + w[e + "position_embeddings.weight"][np.arange(L)][None]
    x = _ln(x, w[e + "LayerNorm.weight"], w[e + "LayerNorm.bias"])
    if "electra.embeddings_project.weight" in w:
        x = _dense(x, w, "electra.embeddings_project")
    hidden = [x]
    bias = (1.0 - attention_mask[:, None, None, :].astype(np.float64)) * -10000.0
    nh = cfg["num_attention_heads"]
    H = x.shape[-1]
    d = H // nh
    for i in range(cfg["num_hidden_layers"]):
        p = f"electra.encoder.layer.{i}."

        def heads(t):
            return t.reshape(t.shape[0], L, nh, d).transpose(0, 2, 1, 3)

        q = heads(_dense(x, w, p + "attention.self.query"))
        k = heads(_dense(x, w, p + "attention.self.key"))
        v = heads(_dense(x, w, p + "attention.self.value"))
        s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + bias
        s = s - s.max(-1, keepdims=True)
        a = np.exp(s)
        a = a / a.sum(-1, keepdims=True)
        ctx = (a @ v).transpose(0, 2, 1, 3).reshape(x.shape[0], L, H)
        att = _ln(_dense(ctx, w, p + "attention.output.dense") + x,
                  w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"])
        inter = _gelu(_dense(att, w, p + "intermediate.dense"))
        x = _ln(_dense(inter, w, p + "output.dense") + att,
                w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
        hidden.append(x)
    return w, np.stack(hidden)


def ref_disc(weights, cfg, *inputs):
    w, hidden = ref_encoder(weights, cfg, *inputs)
    h = _gelu(_dense(hidden[-1], w, "discriminator_predictions.dense"))
    return _dense(h, w, "discriminator_predictions.dense_prediction")[..., 0], hidden


def ref_gen(weights, cfg, *inputs):
    w, hidden = ref_encoder(weights, cfg, *inputs)
    h = _gelu(_dense(hidden[-1], w, "generator_predictions.dense"))
    h = _ln(h, w["generator_predictions.LayerNorm.weight"], w["generator_predictions.LayerNorm.bias"])
    logits = h @ w["electra.embeddings.word_embeddings.weight"].T + w["generator_lm_head.bias"]
    return logits, hidden


def check_close(name, got, want, atol):
    err = float(np.max(np.abs(got.astype(np.float64) - want)))
    print(f"    {name:<22} max|torch32 - numpy64| = {err:.2e}")
    if not err <= atol:
        raise AssertionError(f"{name}: torch and numpy reference differ by {err} > {atol}")
    return err


# ----------------------------------------------------------------------------
# fixture
# ----------------------------------------------------------------------------
def make_fixture(name: str, spec: dict, out_dir: str) -> str:
    print(f"[{name}]")
    L = spec["seq_len"]
    vocab = spec["disc"]["vocab_size"]
    assert spec["gen"]["vocab_size"] == vocab
    input_ids, attention_mask, token_type_ids = make_inputs(vocab, L, spec["input_seed"])
    inputs = (input_ids, attention_mask, token_type_ids)

    torch.manual_seed(0)  # construction-time init is overwritten anyway
    disc, disc_cfg, disc_w = build(ElectraForPreTraining, spec["disc"], spec["disc_seed"], {})
    gen, gen_cfg, gen_w = build(ElectraForMaskedLM, spec["gen"], spec["gen_seed"],
                                golden_weights.GENERATOR_TIED_KEYS)

    disc_logits, disc_hidden = run_torch(disc, *inputs)
    gen_logits, gen_hidden = run_torch(gen, *inputs)
    B, H, G, V = BATCH, spec["disc"]["hidden_size"], spec["gen"]["hidden_size"], vocab
    assert disc_logits.shape == (B, L)
    assert disc_hidden.shape == (spec["disc"]["num_hidden_layers"] + 1, B, L, H)
    assert gen_logits.shape == (B, L, V)
    assert gen_hidden.shape == (spec["gen"]["num_hidden_layers"] + 1, B, L, G)

    # cross-check against the float64 numpy reference (TF1 mask convention)
    ref_dl, ref_dh = ref_disc(disc_w, spec["disc"], *inputs)
    full_gen_w = golden_weights.apply_ties(gen_w, golden_weights.GENERATOR_TIED_KEYS)
    ref_gl, ref_gh = ref_gen(full_gen_w, spec["gen"], *inputs)
    check_close("disc_hidden_states", disc_hidden, ref_dh, 1e-4)
    check_close("disc_logits", disc_logits, ref_dl, 1e-4)
    check_close("gen_hidden_states", gen_hidden, ref_gh, 1e-4)
    check_close("gen_logits", gen_logits, ref_gl, 1e-4)

    # sanity: padding is really masked (changing padded ids leaves real positions alone)
    ids2 = input_ids.copy()
    ids2[1, L - PAD_LAST:] = (ids2[1, L - PAD_LAST:] + 7) % vocab
    dl2, _ = run_torch(disc, ids2, attention_mask, token_type_ids)
    assert np.array_equal(dl2[0], disc_logits[0])
    assert np.allclose(dl2[1, :L - PAD_LAST], disc_logits[1, :L - PAD_LAST], atol=1e-6, rtol=0)
    # ...and that the mask matters (without it the real positions change)
    _, dh3 = run_torch(disc, input_ids, np.ones_like(attention_mask), token_type_ids)
    assert not np.allclose(dh3[-1, 1, :L - PAD_LAST], disc_hidden[-1, 1, :L - PAD_LAST], atol=1e-3)

    def js(s):
        return np.array(s)  # 0-d unicode array, loads with allow_pickle=False

    disc_shapes = {k: list(v.shape) for k, v in disc_w.items()}
    gen_shapes = {k: list(v.shape) for k, v in gen_w.items()}
    data = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "token_type_ids": token_type_ids,
        "disc_config_json": js(disc_cfg.to_json_string(use_diff=False)),
        "gen_config_json": js(gen_cfg.to_json_string(use_diff=False)),
        "disc_seed": np.array(spec["disc_seed"], dtype=np.int64),
        "gen_seed": np.array(spec["gen_seed"], dtype=np.int64),
        "input_seed": np.array(spec["input_seed"], dtype=np.int64),
        "disc_keys": np.array(sorted(disc_w)),
        "gen_keys": np.array(sorted(gen_w)),
        "disc_shapes_json": js(json.dumps(disc_shapes, sort_keys=True)),
        "gen_shapes_json": js(json.dumps(gen_shapes, sort_keys=True)),
        "gen_tied_json": js(json.dumps(golden_weights.GENERATOR_TIED_KEYS, sort_keys=True)),
        "disc_w_sha256": js(golden_weights.weights_sha256(disc_w)),
        "gen_w_sha256": js(golden_weights.weights_sha256(gen_w)),
        "versions_json": js(json.dumps({"torch": torch.__version__,
                                        "transformers": transformers.__version__,
                                        "numpy": np.__version__}, sort_keys=True)),
        "disc_logits": disc_logits,
        "gen_logits": gen_logits,
        "gen_hidden_last": gen_hidden[-1],
    }
    if spec["all_hidden"]:
        data["disc_hidden_states"] = disc_hidden
    else:
        data["disc_hidden_first"] = disc_hidden[0]
        data["disc_hidden_last"] = disc_hidden[-1]
    if spec["store_weights"]:
        for k, v in disc_w.items():
            data["disc_w/" + k] = v
        for k, v in gen_w.items():
            data["gen_w/" + k] = v

    path = os.path.join(out_dir, name + ".npz")
    np.savez_compressed(path, **data)
    print(f"    wrote {path} ({os.path.getsize(path)} bytes)")
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", default=HERE)
    ap.add_argument("--only", choices=sorted(FIXTURES), default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # bit-reproducible CPU results
    os.makedirs(args.out_dir, exist_ok=True)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, numpy {np.__version__}")
    for name, spec in FIXTURES.items():
        if args.only in (None, name):
            make_fixture(name, spec, args.out_dir)


if __name__ == "__main__":
    main()
