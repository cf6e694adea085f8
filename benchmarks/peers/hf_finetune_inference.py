"""Peer of ``benchmarks/finetuning_inference_speed.py``: Hugging Face transformers on PyTorch.

Runs in the PyTorch venv (see /work/shared/bench/README.md), on the inputs the electra-tf
side wrote (``--inputs FILE``, JSON: the texts, their word-piece ids from electra-tf's
tokenizer, the by-length batches of ``electra_tf.detection``, the fine-tuning batch):

    /tmp/peers-pt/bin/python benchmarks/peers/hf_finetune_inference.py --task=finetune \
        --inputs=INPUTS.json --warmup=2 --repeats=5 [--bf16] [--hidden=256 ...]
    /tmp/peers-pt/bin/python benchmarks/peers/hf_finetune_inference.py --task=inference \
        --inputs=INPUTS.json --warmup=1 --repeats=5 [--bf16]

``--task=finetune``: one training step of ``ElectraForSequenceClassification`` (train mode,
dropout on) on a batch [B, L] of the fine-tuning ids: forward, cross-entropy, backward,
global-norm clipping at 1.0, ``torch.optim.AdamW`` with the fine-tuning driver's
hyper-parameters (learning rate, weight decay 0.01 except LayerNorm and biases, eps 1e-6,
the same layer-wise learning-rate multipliers d^(n+2) for embeddings, d^(n+1-k) for
layer k, 1 for the head), zero_grad. One timed repeat = one step = one batch.

``--task=inference``: ``ElectraForPreTraining`` (eval mode) under ``torch.inference_mode()``,
one timed repeat = one pass over all texts, in three modes:

* ``ids_by_length``: exactly the padded batches ``electra_tf.detection.discriminator_logits``
  forms (texts sorted by length, each batch padded to its longest);
* ``text_by_length``: the same groups of texts as strings, tokenized by transformers'
  ``BertTokenizer`` (the Rust ``tokenizers`` backend) on electra-tf's vocabulary with
  padding to the longest of the batch: the peer of ``detect_replaced_tokens`` on strings;
* ``text_max_length``: consecutive groups of B texts as strings, tokenized and padded to L:
  the peer of the exported SavedModel's ``serving_default(text)``.

``--bf16`` runs forward (and loss) under ``torch.autocast("cpu", dtype=torch.bfloat16)``;
weights and the optimizer stay float32. Prints one ``RESULT {json}`` line per measured row.

torch and transformers are imported in :func:`main` only, so the argument parser and the
input reader import without them (the test suite uses them without torch).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

INFERENCE_MODES = ("ids_by_length", "text_by_length", "text_max_length")


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", choices=["finetune", "inference"], required=True)
    ap.add_argument("--inputs", required=True, help="JSON written by finetuning_inference_speed.py")
    ap.add_argument("--warmup", type=int, default=2, help="untimed repeats first")
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats (median)")
    ap.add_argument("--bf16", action="store_true", help="torch.autocast(cpu, bfloat16)")
    ap.add_argument("--modes", default=",".join(INFERENCE_MODES),
                    help="inference modes, comma list of " + ", ".join(INFERENCE_MODES))
    ap.add_argument("--attn", choices=["sdpa", "eager"], default="sdpa")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: default)")
    ap.add_argument("--serve", action="store_true",
                    help="finetune: after the warm-up print READY, then run one step per "
                         "'step' line on stdin, answering 'TIME <seconds> <loss>' "
                         "(finetuning_inference_speed.py --interleave)")
    # The model shape (default ELECTRA-Small); the electra-tf side passes its own config.
    ap.add_argument("--vocab", type=int, default=30522)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--intermediate", type=int, default=1024)
    ap.add_argument("--embedding", type=int, default=128)
    ap.add_argument("--max_positions", type=int, default=512)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--num_labels", type=int, default=2)
    # The fine-tuning driver's optimizer hyper-parameters.
    ap.add_argument("--learning_rate", type=float, default=1e-4)
    ap.add_argument("--weight_decay", type=float, default=0.01)
    ap.add_argument("--layerwise_lr_decay", type=float, default=0.8)
    args = ap.parse_args(argv)
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in args.modes if m not in INFERENCE_MODES]
    if unknown:
        ap.error(f"--modes: unknown {unknown}; choose from {', '.join(INFERENCE_MODES)}")
    if args.repeats < 1 or args.warmup < 1:
        ap.error("--repeats and --warmup must be >= 1 (the first call is slow)")
    return args


def read_inputs(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def pad_rows(rows, length: int):
    """``(ids, mask)`` nested lists [len(rows), length] of unpadded id lists, zero-padded."""
    ids = [list(r) + [0] * (length - len(r)) for r in rows]
    mask = [[1] * len(r) + [0] * (length - len(r)) for r in rows]
    return ids, mask


def layer_multiplier(name: str, num_layers: int, decay: float) -> float:
    """The fine-tuning driver's layer-wise LR multiplier of a transformers parameter name:
    embeddings d^(n+2), ``encoder.layer.k`` d^(n+1-k), the classifier head 1."""
    if decay <= 0:
        return 1.0
    if ".embeddings." in name or "embeddings_project" in name:
        return decay ** (num_layers + 2)
    marker = "encoder.layer."
    if marker in name:
        k = int(name.split(marker, 1)[1].split(".", 1)[0])
        return decay ** (num_layers + 1 - k)
    return 1.0


def summarize(times, batches_per_repeat: int, batch: int) -> dict:
    """s/batch (median repeat / batches per repeat) and examples/s (batch / s per batch)."""
    per_batch = statistics.median(times) / batches_per_repeat
    return {"repeat_times": [round(t, 5) for t in times], "batches_per_repeat": batches_per_repeat,
            "median_s_per_batch": per_batch, "examples_per_s": batch / per_batch}


def main(argv=None) -> int:
    args = parse_args(argv)
    inputs = read_inputs(args.inputs)

    import torch
    import transformers
    from transformers import ElectraConfig

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = ElectraConfig(vocab_size=args.vocab, embedding_size=args.embedding,
                           hidden_size=args.hidden, num_hidden_layers=args.layers,
                           num_attention_heads=args.heads, intermediate_size=args.intermediate,
                           max_position_embeddings=args.max_positions, type_vocab_size=2,
                           hidden_act="gelu", hidden_dropout_prob=args.dropout,
                           attention_probs_dropout_prob=args.dropout,
                           num_labels=args.num_labels, attn_implementation=args.attn)
    common = {"impl": "hf", "torch": torch.__version__, "transformers": transformers.__version__,
              "threads": torch.get_num_threads(), "attn": args.attn,
              "precision": "bfloat16" if args.bf16 else "float32",
              "python": platform.python_version()}

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16)

    if args.task == "finetune":
        result = finetune(args, inputs, config, autocast, torch, common)
        if result is not None:
            print("RESULT " + json.dumps({**common, **result}), flush=True)
    else:
        for result in inference(args, inputs, config, autocast, torch):
            print("RESULT " + json.dumps({**common, **result}), flush=True)
    return 0


def finetune(args, inputs, config, autocast, torch, common=None):
    from transformers import ElectraForSequenceClassification
    data = inputs["finetune"]
    batch = int(inputs["batch_size"])
    ids = torch.tensor(data["input_ids"], dtype=torch.long)          # [n, L]
    mask = torch.tensor(data["input_mask"], dtype=torch.long)
    segments = torch.tensor(data["segment_ids"], dtype=torch.long)
    labels = torch.tensor(data["labels"], dtype=torch.long)          # [n]
    n_batches = ids.shape[0] // batch

    model = ElectraForSequenceClassification(config)
    model.train()
    groups = {}
    for name, param in model.named_parameters():
        decays = not ("LayerNorm" in name or name.endswith("bias"))
        key = (layer_multiplier(name, args.layers, args.layerwise_lr_decay), decays)
        groups.setdefault(key, []).append(param)
    optimizer = torch.optim.AdamW(
        [{"params": params, "lr": args.learning_rate * multiplier,
          "weight_decay": args.weight_decay if decays else 0.0}
         for (multiplier, decays), params in groups.items()],
        lr=args.learning_rate, betas=(0.9, 0.999), eps=1e-6)
    parameters = list(model.parameters())
    before = [p.detach().clone() for p in parameters]

    def step(index):
        rows = slice((index % n_batches) * batch, (index % n_batches + 1) * batch)
        with autocast():
            logits = model(input_ids=ids[rows], attention_mask=mask[rows],
                           token_type_ids=segments[rows]).logits
            loss = torch.nn.functional.cross_entropy(logits.float(), labels[rows])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    losses, times = [], []
    start = time.perf_counter()
    losses.append(step(0))
    first_s = time.perf_counter() - start
    for i in range(1, args.warmup):
        losses.append(step(i))
    if args.serve:  # one step per request, until "quit"
        print("READY " + json.dumps({**(common or {}), "first_s": first_s}), flush=True)
        i = args.warmup
        for line in sys.stdin:
            if line.strip() == "quit":
                break
            if line.strip() != "step":
                continue
            start = time.perf_counter()
            loss = step(i)
            print(f"TIME {time.perf_counter() - start:.6f} {loss:.6f}", flush=True)
            i += 1
        return None
    for i in range(args.warmup, args.warmup + args.repeats):
        start = time.perf_counter()
        losses.append(step(i))
        times.append(time.perf_counter() - start)
    changed = max(float((p.detach() - b).abs().max()) for p, b in zip(parameters, before))
    return {"task": "finetune", "path": "ElectraForSequenceClassification + torch AdamW",
            "input": "ids", "padding": "max_length", "batch": batch,
            "seq": int(inputs["max_seq_length"]), "first_s": first_s, "losses": losses,
            "loss_reduction": "mean over the batch",
            "max_weight_change": changed, "weights_changed": changed > 0,
            "params_m": sum(p.numel() for p in parameters) / 1e6,
            **summarize(times, 1, batch)}


def _tokenizer(inputs):
    """transformers' BERT tokenizer (Rust backend) on electra-tf's vocabulary file."""
    from transformers import BertTokenizer
    with open(inputs["vocab_file"], encoding="utf-8") as f:
        vocab = {line.rstrip("\n"): i for i, line in enumerate(f)}
    return BertTokenizer(vocab=vocab, do_lower_case=bool(inputs["do_lower_case"]))


def inference(args, inputs, config, autocast, torch):
    from transformers import ElectraForPreTraining
    texts, encoded = inputs["texts"], inputs["encoded_ids"]
    batch, length = int(inputs["batch_size"]), int(inputs["max_seq_length"])
    by_length = inputs["batches_by_length"]              # index lists, electra-tf's batching
    consecutive = [list(range(i, i + batch)) for i in range(0, len(texts), batch)]
    model = ElectraForPreTraining(config)
    model.eval()
    tokenizer = _tokenizer(inputs) if any(m.startswith("text") for m in args.modes) else None

    def run_ids(groups):
        for group in groups:
            rows = [encoded[i] for i in group]
            ids, mask = pad_rows(rows, max(len(r) for r in rows))
            ids, mask = torch.tensor(ids), torch.tensor(mask)
            with torch.inference_mode(), autocast():
                model(input_ids=ids, attention_mask=mask,
                      token_type_ids=torch.zeros_like(ids)).logits.float()

    def run_text(groups, padding):
        for group in groups:
            features = tokenizer([texts[i] for i in group], padding=padding, truncation=True,
                                 max_length=length, return_tensors="pt")
            with torch.inference_mode(), autocast():
                model(**features).logits.float()

    runners = {
        "ids_by_length": (lambda: run_ids(by_length), by_length, "ids", "by_length"),
        "text_by_length": (lambda: run_text(by_length, "longest"), by_length, "strings",
                           "by_length"),
        "text_max_length": (lambda: run_text(consecutive, "max_length"), consecutive,
                            "strings", "max_length"),
    }
    same_ids = None
    if tokenizer is not None:
        # Same inputs: transformers' word-pieces against electra-tf's, text by text.
        hf_ids = tokenizer(texts, truncation=True, max_length=length)["input_ids"]
        same_ids = sum(a == b for a, b in zip(hf_ids, encoded)) / len(texts)
    for mode in args.modes:
        run, groups, kind, padding = runners[mode]
        start = time.perf_counter()
        run()
        first_s = time.perf_counter() - start
        for _ in range(args.warmup - 1):
            run()
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        yield {"task": "inference", "path": f"ElectraForPreTraining {mode}", "mode": mode,
               "input": kind, "padding": padding, "batch": batch, "seq": length,
               "num_sentences": len(texts), "first_s": first_s,
               "ids_match_fraction": same_ids if kind == "strings" else 1.0,
               **summarize(times, len(groups), batch)}


if __name__ == "__main__":
    sys.exit(main())
