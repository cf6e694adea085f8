"""Checks that transformers loads what ``python -m electra_tf.convert --to=hf`` writes.

A manual check (the test suite has no torch). Run with a Python that has torch +
transformers; the conversions run in electra_tf's own Python (``--tf-python``):

    /tmp/hfvenv/bin/python tests/data/hf_interop/check_transformers_loads_export.py

1. The golden transformers directories of this folder go hf -> tf1 -> keras -> hf
   through the converter; transformers loads the result (no missing or unexpected
   weights) and must reproduce the golden outputs (golden.npz).
2. A random ELECTRA built by electra_tf (tied embeddings, E != G, every weight
   random) is saved as a TF1 checkpoint and converted to hf; transformers' outputs
   must match electra_tf's on the golden batch.
3. transformers' ElectraTokenizer / AutoTokenizer loads the exported tokenizer files.
Prints the max abs differences; exits non-zero if one exceeds 1e-5.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from transformers import AutoTokenizer, ElectraForMaskedLM, ElectraForPreTraining, ElectraModel

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, os.pardir, os.pardir, os.pardir))
TOLERANCE = 1e-5

# Runs in electra_tf's Python: a random tied ELECTRA as a TF1 checkpoint, and its outputs.
MAKE_OURS = r"""
import json, os, sys
import numpy as np, keras, tensorflow as tf
from electra_tf import PretrainingConfig, build_pretraining_models, save_original_checkpoint
out, golden, vocab = sys.argv[1:4]
keras.utils.set_random_seed(7)
config = PretrainingConfig.from_preset("small", {
    "vocab_size": 100, "embedding_size": 16, "max_seq_length": 16,
    "generator_hidden_size": 0.75, "model_hparam_overrides": {
        "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 40, "max_position_embeddings": 24}})
models = build_pretraining_models(config)
rng = np.random.default_rng(11)
for name, v in models.original_variables().items():  # biases/LayerNorm too, not just kernels
    v.assign(rng.normal(1.0 if name.endswith("gamma") else 0.0, 0.05, v.shape).astype("float32"))
save_original_checkpoint(os.path.join(out, "model.ckpt-5"), *models.models, global_step=5)
with open(os.path.join(out, "pretraining_config.json"), "w") as f:
    json.dump(config.to_dict(), f)
tf.io.gfile.copy(vocab, os.path.join(out, "vocab.txt"))
z = np.load(golden)
batch = {"input_ids": tf.constant(z["input_ids"]), "input_mask": tf.constant(z["attention_mask"]),
         "segment_ids": tf.constant(z["token_type_ids"])}
np.savez(os.path.join(out, "ours.npz"),
         discriminator_logits=models.discriminator(batch)["logits"].numpy(),
         generator_logits=models.generator(batch)["logits"].numpy())
"""


def convert(tf_python, source, output, to):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([tf_python, "-m", "electra_tf.convert", f"--input={source}",
                             f"--output={output}", f"--to={to}"], check=False, cwd=ROOT,
                            env=env, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"conversion {source} -> {to} failed:\n{result.stderr}")
    print("   ", result.stdout.strip().replace("\n", "\n    "))


def load(cls, directory):
    model, info = cls.from_pretrained(directory, output_loading_info=True,
                                      attn_implementation="eager")
    bad = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys",
                                                        "mismatched_keys", "error_msgs")}
    if bad:
        sys.exit(f"transformers reported problems loading {directory}: {bad}")
    return model.eval()


@torch.no_grad()
def outputs(model, z, types_key="token_type_ids"):
    out = model(input_ids=torch.from_numpy(z["input_ids"]).long(),
                attention_mask=torch.from_numpy(z["attention_mask"]).long(),
                token_type_ids=torch.from_numpy(z[types_key]).long(),
                output_hidden_states=True)
    return out


def report(name, got, want, results):
    diff = float(np.max(np.abs(np.asarray(got, np.float64) - np.asarray(want, np.float64))))
    results[name] = diff
    print(f"  {name:<48} max abs diff {diff:.3g}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tf-python", default="/work/venv/bin/python")
    parser.add_argument("--work", default=None, help="keep the exports here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    work = args.work or tempfile.mkdtemp(prefix="hf_interop_check_")
    z = np.load(os.path.join(HERE, "golden.npz"))
    results = {}

    print("1. golden transformers directories through hf -> tf1 -> keras -> hf")
    pair = os.path.join(work, "pair")
    convert(args.tf_python, os.path.join(HERE, "pair"), pair + "_tf1", "tf1")
    convert(args.tf_python, pair + "_tf1", pair + "_keras", "keras")
    convert(args.tf_python, pair + "_keras", pair + "_hf", "hf")
    bare = os.path.join(work, "bare")
    convert(args.tf_python, os.path.join(HERE, "bare"), bare + "_tf1", "tf1")
    convert(args.tf_python, bare + "_tf1", bare + "_hf", "hf")
    disc = load(ElectraForPreTraining, os.path.join(pair + "_hf", "discriminator"))
    report("ElectraForPreTraining logits vs golden", outputs(disc, z).logits,
           z["discriminator_logits"], results)
    gen = load(ElectraForMaskedLM, os.path.join(pair + "_hf", "generator"))
    report("ElectraForMaskedLM logits vs golden", outputs(gen, z).logits,
           z["generator_logits"], results)
    model = load(ElectraModel, bare + "_hf")
    hidden = np.stack([h.numpy() for h in outputs(model, z, "bare_token_type_ids").hidden_states])
    report("ElectraModel hidden states vs golden", hidden, z["bare_hidden_states"], results)

    print("2. a random ELECTRA made by electra_tf, tf1 -> hf")
    ours = os.path.join(work, "ours_tf1")
    os.makedirs(ours, exist_ok=True)
    made = subprocess.run([args.tf_python, "-c", MAKE_OURS, ours, os.path.join(HERE, "golden.npz"),
                           os.path.join(HERE, "pair", "discriminator", "vocab.txt")], check=False, cwd=ROOT,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
                          capture_output=True, text=True)
    if made.returncode:
        sys.exit(f"building our model failed:\n{made.stderr}")
    expected = np.load(os.path.join(ours, "ours.npz"))
    convert(args.tf_python, ours, os.path.join(work, "ours_hf"), "hf")
    disc = load(ElectraForPreTraining, os.path.join(work, "ours_hf", "discriminator"))
    report("ElectraForPreTraining logits vs electra_tf", outputs(disc, z).logits,
           expected["discriminator_logits"], results)
    gen = load(ElectraForMaskedLM, os.path.join(work, "ours_hf", "generator"))
    report("ElectraForMaskedLM logits vs electra_tf", outputs(gen, z).logits,
           expected["generator_logits"], results)
    tied = gen.generator_lm_head.weight.data_ptr() == \
        gen.electra.embeddings.word_embeddings.weight.data_ptr()
    print(f"  generator lm head tied to its word embeddings: {tied}")

    print("3. tokenizer files")
    tokenizer = AutoTokenizer.from_pretrained(os.path.join(work, "ours_hf", "discriminator"))
    ids = tokenizer("The ELECTRA model")["input_ids"]
    tokens = tokenizer.convert_ids_to_tokens(ids)
    print(f"  {type(tokenizer).__name__}: {tokens}")
    ok_tokens = tokens == ["[CLS]", "the", "electra", "model", "[SEP]"]

    worst = max(results.values())
    print(f"max abs diff over all checks: {worst:.3g} (tolerance {TOLERANCE}); exports in {work}")
    if worst > TOLERANCE or not tied or not ok_tokens:
        sys.exit("FAILED")
    print("OK")


if __name__ == "__main__":
    main()
