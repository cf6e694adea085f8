"""Writes the transformers directories and reference outputs of tests/test_hf_interop.py.

Run with a Python that has torch + transformers (not needed by the test suite):

    /tmp/hfvenv/bin/python tests/data/hf_interop/make_hf_interop_golden.py

Builds three tiny random ELECTRA models with transformers, fills them with
deterministic weights (``tests/data/hf_golden/golden_weights.py``, NumPy only),
saves each with ``save_pretrained`` (safetensors) plus a vocab.txt and the
``tokenizer_config.json`` that ``ElectraTokenizer.save_pretrained`` writes, and
stores the models' outputs on a fixed batch in ``golden.npz``:

* ``pair/discriminator``: ElectraForPreTraining, V=100 E=16 H=32, 2 layers, 4 heads, I=37.
* ``pair/generator``: ElectraForMaskedLM, E=16 G=8, 2 layers, 1 head, I=32, whose
  embedding block equals the discriminator's (tied, as ELECTRA pre-training leaves
  them; like the hub pairs google/electra-*-discriminator / -generator).
* ``bare``: ElectraModel, E=H=32 (no projection), 1 layer, 2 heads, I=48,
  type_vocab_size=3, hidden_act="gelu_new", do_lower_case=False.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import torch
import transformers
from transformers import (
    ElectraConfig,
    ElectraForMaskedLM,
    ElectraForPreTraining,
    ElectraModel,
    ElectraTokenizer,
)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, "hf_golden"))
import golden_weights  # numpy-only

VOCAB_SIZE = 100
BATCH, LENGTH, PAD_LAST = 2, 12, 4
COMMON = {"vocab_size": VOCAB_SIZE, "layer_norm_eps": 1e-12, "hidden_dropout_prob": 0.1,
          "attention_probs_dropout_prob": 0.1, "pad_token_id": 0, "attn_implementation": "eager"}
SPECS = {
    "pair/discriminator": (ElectraForPreTraining, 101, True, {
        "embedding_size": 16, "hidden_size": 32, "num_hidden_layers": 2,
        "num_attention_heads": 4, "intermediate_size": 37, "max_position_embeddings": 32,
        "type_vocab_size": 2, "hidden_act": "gelu"}),
    "pair/generator": (ElectraForMaskedLM, 202, True, {
        "embedding_size": 16, "hidden_size": 8, "num_hidden_layers": 2,
        "num_attention_heads": 1, "intermediate_size": 32, "max_position_embeddings": 32,
        "type_vocab_size": 2, "hidden_act": "gelu"}),
    "bare": (ElectraModel, 303, False, {
        "embedding_size": 32, "hidden_size": 32, "num_hidden_layers": 1,
        "num_attention_heads": 2, "intermediate_size": 48, "max_position_embeddings": 24,
        "type_vocab_size": 3, "hidden_act": "gelu_new"}),
}


def vocab_tokens():
    words = ["the", "a", "of", "and", "to", "in", "is", "electra", "token", "model"]
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words
    tokens += [f"##{w}" for w in words]
    tokens += [f"w{i}" for i in range(VOCAB_SIZE - len(tokens))]
    assert len(tokens) == VOCAB_SIZE
    return tokens


def make_inputs():
    rng = np.random.default_rng(20250606)
    input_ids = rng.integers(0, VOCAB_SIZE, size=(BATCH, LENGTH)).astype(np.int32)
    mask = np.ones((BATCH, LENGTH), np.int32)
    mask[1, LENGTH - PAD_LAST:] = 0
    types = np.zeros((BATCH, LENGTH), np.int32)
    types[0, LENGTH // 2:] = 1
    types[1, 3:LENGTH - PAD_LAST - 1] = 1
    bare_types = types.copy()
    bare_types[0, LENGTH - 3:] = 2  # the bare model has type_vocab_size=3
    return input_ids, mask, types, bare_types


def build(cls, seed, spec, shared=None):
    config = ElectraConfig(**COMMON, **spec)
    model = cls(config).eval()
    state = model.state_dict()
    ties = dict(getattr(cls, "_tied_weights_keys", None) or {})
    shapes = {k: tuple(v.shape) for k, v in state.items() if k not in ties}
    weights = golden_weights.make_weights(shapes, seed)
    for key, value in (shared or {}).items():  # the generator gets the discriminator's block
        weights[key] = value
    full = golden_weights.apply_ties(weights, ties)
    missing, unexpected = model.load_state_dict(
        {k: torch.from_numpy(v.copy()) for k, v in full.items()}, strict=False)
    assert not unexpected and set(missing) <= set(ties), (missing, unexpected)
    for key, value in full.items():
        assert np.array_equal(model.state_dict()[key].numpy(), value), key
    return model, weights


@torch.no_grad()
def run(model, ids, mask, types):
    out = model(input_ids=torch.from_numpy(ids).long(), attention_mask=torch.from_numpy(mask).long(),
                token_type_ids=torch.from_numpy(types).long(), output_hidden_states=True)
    first = out.logits if hasattr(out, "logits") else out.last_hidden_state
    return first.numpy(), np.stack([h.numpy() for h in out.hidden_states])


def save(model, directory, do_lower_case, vocab):
    if os.path.exists(directory):
        shutil.rmtree(directory)
    model.save_pretrained(directory)  # safetensors
    with open(os.path.join(directory, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = ElectraTokenizer(vocab_file=os.path.join(directory, "vocab.txt"),
                                     do_lower_case=do_lower_case)
        tokenizer.save_pretrained(tmp)
        shutil.copy(os.path.join(tmp, "tokenizer_config.json"), directory)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", default=HERE)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    ids, mask, types, bare_types = make_inputs()
    vocab = vocab_tokens()
    data = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types,
            "bare_token_type_ids": bare_types}
    models = {}
    shared = None
    for name, (cls, seed, lower, spec) in SPECS.items():
        model, weights = build(cls, seed, spec, shared if name == "pair/generator" else None)
        if name == "pair/discriminator":
            shared = {k: v for k, v in weights.items() if k.startswith("electra.embeddings.")}
        directory = os.path.join(args.out_dir, name)
        save(model, directory, lower, vocab)
        # transformers reads back what it wrote, with the same outputs
        again = cls.from_pretrained(directory, attn_implementation="eager").eval()
        key = name.replace("pair/", "")
        batch_types = bare_types if name == "bare" else types
        first, hidden = run(model, ids, mask, batch_types)
        first2, _ = run(again, ids, mask, batch_types)
        assert np.array_equal(first, first2), name
        models[key] = model
        if name == "bare":
            data["bare_hidden_states"] = hidden
        else:
            data[f"{key}_logits"] = first
            data[f"{key}_last_hidden"] = hidden[-1]
    gen_emb = models["generator"].electra.embeddings.word_embeddings.weight
    assert torch.equal(gen_emb, models["discriminator"].electra.embeddings.word_embeddings.weight)
    data["versions_json"] = np.array(json.dumps({
        "torch": torch.__version__, "transformers": transformers.__version__,
        "numpy": np.__version__}, sort_keys=True))
    path = os.path.join(args.out_dir, "golden.npz")
    np.savez_compressed(path, **data)
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(args.out_dir)
                for f in fs)
    print(f"wrote {path}; transformers {transformers.__version__}, torch {torch.__version__}; "
          f"{args.out_dir} holds {total} bytes")


if __name__ == "__main__":
    main()
