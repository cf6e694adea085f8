"""Word-piece ids of the Keras preprocessor (TensorFlow ops) against the faithful tokenizer.

The Keras ``ElectraPreprocessor`` tokenizes in the graph (``serving_text.TextEncoder``:
BERT's cleanup, lower-casing and accent stripping as TensorFlow string ops, then
tensorflow-text's WordPiece); ``FullTokenizer`` is the original's pure-Python tokenizer.
This compares their ids on every text of the shared GLUE and SQuAD data and lists every
difference:

    python benchmarks/tokenizer_parity.py            # ../shared/data, BERT uncased vocab
    python benchmarks/tokenizer_parity.py --json benchmarks/results/tokenizer_parity.json
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
# Text columns of the GLUE files (0-based), by directory; None: every column but labels.
GLUE_COLUMNS = {"CoLA": [3], "SST-2": [0], "MRPC": [3, 4], "WNLI": [1, 2], "QNLI": [1, 2],
                "MNLI": [8, 9], "QQP": [3, 4]}


def glue_texts(data_dir: str) -> dict:
    """``{file: [texts]}`` of every GLUE TSV under ``data_dir/glue``."""
    out = {}
    for path in sorted(glob.glob(os.path.join(data_dir, "glue", "*", "*.tsv"))):
        task = os.path.basename(os.path.dirname(path))
        columns = GLUE_COLUMNS.get(task)
        if columns is None:
            continue
        with open(path, encoding="utf-8") as f:
            rows = list(csv.reader(f, delimiter="\t", quotechar=None))
        if task != "CoLA":
            rows = rows[1:]  # header
        out[os.path.relpath(path, data_dir)] = [row[c] for row in rows for c in columns
                                                if c < len(row)]
    return out


def squad_texts(data_dir: str) -> dict:
    out = {}
    for path in sorted(glob.glob(os.path.join(data_dir, "squad", "*.json"))):
        with open(path, encoding="utf-8") as f:
            data = json.load(f)["data"]
        texts = []
        for article in data:
            for paragraph in article["paragraphs"]:
                texts.append(paragraph["context"])
                texts.extend(qa["question"] for qa in paragraph["qas"])
        out[os.path.relpath(path, data_dir)] = texts
    return out


def compare(texts: list, vocab_file: str, do_lower_case: bool = True,
            batch_size: int = 256) -> list:
    """The texts whose ids differ: ``[(index, text, faithful ids, graph ids)]``."""
    import tensorflow as tf
    from electra_tf.serving_text import TextEncoder
    from electra_tf.tokenization import FullTokenizer, load_vocab_tokens, special_ids_of_tokens
    faithful = FullTokenizer(vocab_file, do_lower_case=do_lower_case)
    tokens = load_vocab_tokens(vocab_file)
    # The in-graph encoder of ElectraPreprocessor, the SavedModel and serving.
    encoder = TextEncoder(tokens, special_ids_of_tokens(tokens, vocab_file), do_lower_case, 512)
    differences = []
    for start in range(0, len(texts), batch_size):
        batch = texts[start:start + batch_size]
        graph = encoder.word_pieces(tf.constant(batch)).to_list()
        for offset, (text, ids) in enumerate(zip(batch, graph)):
            want = faithful.convert_tokens_to_ids(faithful.tokenize(text))
            if want != ids:
                differences.append((start + offset, text, want, ids))
    return differences


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", default=SHARED)
    parser.add_argument("--vocab_file", default=None,
                        help="default: data/vocab/bert_uncased_vocab.txt under --data_dir")
    parser.add_argument("--json", default=None, help="write the summary here")
    args = parser.parse_args(argv)
    vocab = args.vocab_file or os.path.join(args.data_dir, "vocab", "bert_uncased_vocab.txt")
    sources = {**glue_texts(args.data_dir), **squad_texts(args.data_dir)}
    if not sources:
        print(f"error: no GLUE TSV or SQuAD JSON under {args.data_dir}", file=sys.stderr)
        return 2
    summary = {"vocab": os.path.basename(vocab), "files": {}, "differences": []}
    started = time.time()
    for name, texts in sources.items():
        unique = sorted(set(texts))
        differences = compare(unique, vocab)
        summary["files"][name] = {"texts": len(texts), "unique": len(unique),
                                  "different": len(differences)}
        summary["differences"] += [{"file": name, "text": text, "faithful": want,
                                    "graph": got} for _, text, want, got in differences]
        print(f"{name}: {len(unique)} unique texts, {len(differences)} with other ids",
              flush=True)
    total = sum(f["unique"] for f in summary["files"].values())
    print(f"in all: {total} texts, {len(summary['differences'])} differences "
          f"({time.time() - started:.0f} s)")
    for d in summary["differences"][:20]:
        print(f"  {d['file']}: {d['text'][:80]!r}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=1, ensure_ascii=False)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
