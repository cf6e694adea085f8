"""SavedModel export (electra_tf.export): raw strings in, tokenized in the graph, loaded in a
process where electra_tf cannot be imported, and compared with the Keras models run on
FullTokenizer's ids."""

import itertools
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from electra_tf import export, serving_text
from electra_tf.formats import tf1
from electra_tf.config import FinetuningConfig, PretrainingConfig
from electra_tf.finetuning import glue, tagging
from electra_tf.finetuning.network import FinetuningNetwork
from electra_tf.networks import build_pretraining_models
from electra_tf.tokenization import FullTokenizer, default_vocab_file

MIXED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "tokenization",
                     "mixed.txt")

L = 16
WORDS = ["the", "cat", "sat", "on", "mat", "dog", "ran", "fast", "slow", "runs", "play",
         "café", "résumé", "naïve", "über", "hello", "world", "a", "an", "is", "was", "good",
         "bad", "movie"]
PIECES = ["##s", "##ing", "##ed", "##er", "##é"] + list("abcdefghijklmnopqrstuvwxyzé") + [
    "##" + c for c in "abcdefghijklmnopqrstuvwxyz"]
VOCAB = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(".,!?'-") + WORDS
         + ["cafe", "resume", "naive", "uber", "中"] + PIECES)
TINY = {"embedding_size": 16, "vocab_size": len(VOCAB), "max_seq_length": L,
        "model_hparam_overrides": {"hidden_size": 32, "num_hidden_layers": 2}}

TEXTS = [
    "The cat sat on the mat.",
    "Café résumé, naïve ÜBER dog!",                       # accents: stripped iff lower-cased
    "The dog runs\tfast\u00a0and\nplays slowly\u200b with 中文 zebras",  # space, control, CJK
    "é" * 201 + " cats " + "x" * 201,                     # > 200 characters: [UNK]
    "é" * 200 + " x",                                     # 200 characters: word-pieces
    "the dog ran " * 8,                                   # truncated to L - 2 pieces
    "",
    "\x00\ufffd\u0301",
]
PAIRS = [("The cat sat.", "A dog ran!"),
         ("the cat sat on the mat and the dog ran fast", "hello world"),  # a is cut
         ("hi", "the movie was good and the movie was bad and slow"),     # b is cut
         ("good movie", ""),                                              # no text_b
         ("the cat sat on the mat the dog", "the dog ran on the mat the cat")]  # a tie
CHUNK_TAGS = ["B-NP", "E-NP", "O", "S-NP", "S-VP"]
TAGGING_TEXTS = ["The cat sat on the mat .", "Café's dog ran, fast",
                 "the dog ran " * 3, "a " * 20, "", "supercalifragilistic x",
                 "x" * 201 + " cats"]

LOADER = textwrap.dedent("""
    import json, sys
    sys.modules["electra_tf"] = None  # any import of electra_tf fails
    sys.path = [p for p in sys.path if p and os.path.abspath(p) != REPO]
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401
    # Grappler only changes speed (a second per first call of each signature here).
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    try:
        import electra_tf  # noqa: F401
        sys.exit("electra_tf is importable")
    except ImportError:
        pass
    calls = json.load(open("calls.json"))
    out, loaded = {}, {}
    for key, (directory, signature, inputs) in calls.items():
        if directory not in loaded:
            loaded[directory] = tf.saved_model.load(directory)
        fn = loaded[directory].signatures[signature]
        result = fn(**{k: tf.constant(v) for k, v in inputs.items()})
        for name, value in result.items():
            value = value.numpy()
            if value.dtype == object:
                value = np.char.decode(value.astype(np.bytes_), "utf-8")
            out[key + "/" + name] = value
    np.savez("out.npz", **out)
""")


def _features(task, tokenizer, a, b=None):
    return task.tokens_to_features(tokenizer.tokenize(a), tokenizer.tokenize(b) if b else None)


def _batch(rows):
    return {k: np.array([r[k] for r in rows], np.int32) for k in rows[0]}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    vocab = root / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    # A pre-trained discriminator, saved as pre-training exports it.
    config = PretrainingConfig.from_preset("small", {**TINY, "do_lower_case": False})
    disc = build_pretraining_models(config).discriminator
    pre = root / "pretrained"
    tf1.save_original_checkpoint(str(pre / "model.ckpt-5"), disc, global_step=5)
    (pre / "vocab.txt").write_text(vocab.read_text(encoding="utf-8"), encoding="utf-8")
    config.to_json(pre / "pretraining_config.json")
    # A fine-tuned multi-task model with random heads, saved as run_finetuning saves it
    # (<model_dir>_<trial>/model.ckpt-<steps>, Adam slots, no vocab beside it).
    tok = FullTokenizer(str(vocab))
    cache = root / "cache"
    cache.mkdir()
    (cache / "chunk_label_mapping.json").write_text(
        json.dumps({t: i for i, t in enumerate(CHUNK_TAGS)}))
    tasks = [glue.MNLI("", tok, L), glue.SST("", tok, L), glue.STS("", tok, L),
             tagging.ChunkingTask("", tok, L, label_mapping_dir=str(cache))]
    ft_config = FinetuningConfig.from_preset("small", ["mnli", "sst", "sts", "chunk"], TINY)
    model = FinetuningNetwork(ft_config.discriminator_config(), tasks)
    model.build()
    slots = {f"{name}/adam_{m}": np.zeros(v.shape, np.float32)
             for name, v in model.original_variables().items() for m in "mv"}
    ft = root / "finetuning_models" / "mnli_sst_sts_chunk_model_1"
    tf1.save_original_checkpoint(str(ft / "model.ckpt-3"), model, variables=slots,
                                         global_step=3)
    return {"root": root, "vocab": str(vocab), "disc": disc, "pre": str(pre), "tasks": tasks,
            "model": model, "ft": str(ft), "cache": str(cache)}


def test_cli_errors(setup, capsys, tmp_path, monkeypatch):
    pre, ft, vocab = setup["pre"], setup["ft"], setup["vocab"]
    cases = [
        (["--checkpoint", str(tmp_path / "nope")], "checkpoint not found"),
        (["--checkpoint", ft, "--task_name", "mnly"], "unknown task 'mnly'; did you mean mnli"),
        (["--checkpoint", ft, "--task_name", "rte"], "has no head for task rte"),
        ([f"--checkpoint={ft}", "--task_names=rte,sts"], "has no head for task rte"),
        (["--checkpoint", ft, "--task_name", "squad"], "question answering heads are not"),
        (["--checkpoint", ft, "--task_name", "mnli"], "no vocab.txt beside"),
        (["--checkpoint", ft, "--task_name", "chunk", "--vocab_file", vocab], "tag names"),
        (["--checkpoint", ft], "fine-tuned checkpoint: pass --task_name"),
        (["--checkpoint", pre, "--vocab_file", str(tmp_path / "v.txt")], "vocab file not found"),
        (["--checkpoint", pre, "--max_seq_length", "1000"], "--max_seq_length must be in"),
        (["--checkpoint", pre, "--output", pre], "contains --checkpoint"),  # issue 23
    ]
    for argv, message in cases:
        if "--output" not in argv:
            argv = argv + ["--output", str(tmp_path / "out")]
        assert export.main(argv) == 1, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err, err
        assert message in err, (argv, err)
    assert export.main(["--checkpoint", ft, "--output", str(tmp_path / "out"), "stray"]) == 1
    assert capsys.readouterr().err == "error: unexpected arguments: stray\n"
    # The console script electra-export: the same command, exiting with its status.
    monkeypatch.setattr(sys, "argv", ["electra-export", "--checkpoint", str(tmp_path / "nope"),
                                      "--output", str(tmp_path / "out")])
    with pytest.raises(SystemExit) as e:
        export.console_main()
    assert e.value.code == 1 and "checkpoint not found" in capsys.readouterr().err
    assert not os.listdir(tmp_path)  # nothing written, not even a temporary directory
    assert export.main(["--help"]) == 0
    help_text = capsys.readouterr().out
    for phrase in ("FullTokenizer", "Unicode", "do_lower_case", "--overwrite", "text_a"):
        assert phrase in help_text


def test_exported_models_match_keras_without_electra_tf(setup, tmp_path):
    root, vocab = setup["root"], setup["vocab"]
    disc_dir, ft_dir = str(root / "disc"), str(root / "ft_model")
    # pretraining_config.json says do_lower_case=false: the discriminator is exported cased;
    # the fine-tuned model lower-cases (the fine-tuning default).
    assert export.main(["--checkpoint", setup["pre"], "--output", disc_dir,
                        "--max_seq_length", str(L)]) == 0
    assert export.main(["--checkpoint", setup["ft"], "--output", ft_dir, "--vocab_file", vocab,
                        "--task_name", "mnli,sst,sts,chunk", "--max_seq_length", str(L),
                        "--label_mapping_dir", setup["cache"]]) == 0
    assert not [n for n in os.listdir(root) if n.startswith(".")]  # temporaries renamed
    with open(os.path.join(disc_dir, "assets", "vocab.txt"), encoding="utf-8") as f:
        assert f.read().split() == VOCAB
    with open(os.path.join(ft_dir, "assets.extra", export.INFO_FILE), encoding="utf-8") as f:
        info = json.load(f)
    assert info["signatures"]["mnli"]["labels"] == list(glue.MNLI.LABELS)
    assert info["signatures"]["serving_default"]["inputs"] == ["text_a", "text_b"]
    assert info["signatures"]["sst"]["inputs"] == ["text"] and info["do_lower_case"]

    pairs_a, pairs_b = [a for a, _ in PAIRS], [b for _, b in PAIRS]
    calls = {"disc": (disc_dir, "serving_default", {"text": TEXTS}),
             "disc_pair": (disc_dir, "pair", {"text_a": pairs_a, "text_b": pairs_b}),
             "mnli": (ft_dir, "serving_default", {"text_a": pairs_a, "text_b": pairs_b}),
             "sst": (ft_dir, "sst", {"text": TEXTS}),
             "sts": (ft_dir, "sts", {"text_a": pairs_a, "text_b": pairs_b}),
             "chunk": (ft_dir, "chunk", {"text": TAGGING_TEXTS})}
    (tmp_path / "calls.json").write_text(json.dumps(calls))
    (tmp_path / "load.py").write_text(f"import os\nREPO = {str(export.__file__)!r}\n"
                                      "REPO = os.path.dirname(os.path.dirname(REPO))\n" + LOADER)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    proc = subprocess.run([sys.executable, "load.py"], check=False, cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = dict(np.load(tmp_path / "out.npz"))

    lower, cased = FullTokenizer(vocab), FullTokenizer(vocab, do_lower_case=False)
    mnli, chunk = setup["tasks"][0], setup["tasks"][3]
    model = setup["model"]

    def check_ids(key, expected):
        for name in ("input_ids", "input_mask", "segment_ids"):
            np.testing.assert_array_equal(out[f"{key}/{name}"], expected[name], f"{key} {name}")

    def check_disc(key, features):
        check_ids(key, features)
        logits = setup["disc"](features)["logits"].numpy()
        mask = features["input_mask"] > 0
        np.testing.assert_allclose(out[f"{key}/logits"], logits, atol=1e-5)
        np.testing.assert_array_equal(out[f"{key}/is_fake"], (logits > 0) & mask)
        np.testing.assert_allclose(out[f"{key}/fake_probabilities"][mask],
                                   1 / (1 + np.exp(-logits[mask])), atol=1e-6)
        tokens = out[f"{key}/tokens"].astype(str)
        assert all(tokens[r, c] == VOCAB[features["input_ids"][r, c]] if mask[r, c]
                   else tokens[r, c] == "" for r, c in np.ndindex(*mask.shape))

    single = _batch([_features(mnli, lower, t) for t in TEXTS])
    pair = _batch([_features(mnli, lower, a, b) for a, b in PAIRS])
    check_disc("disc", _batch([_features(mnli, cased, t) for t in TEXTS]))
    check_disc("disc_pair", _batch([_features(mnli, cased, a, b) for a, b in PAIRS]))
    # The cases the fixtures are meant to exercise actually occur.
    assert single["input_mask"][5].all() and pair["input_mask"][1:3].all()
    assert list(pair["segment_ids"][4]).count(1) == 7  # the tie: text_b loses one more
    assert (lower.vocab["resume"] in single["input_ids"][1]
            and cased.vocab["résumé"] in out["disc/input_ids"][1])
    for ids in (single["input_ids"][3], out["disc/input_ids"][3]):
        assert list(ids[:6]) == [lower.cls_id, lower.unk_id, lower.vocab["cat"],
                                 lower.vocab["##s"], lower.unk_id, lower.sep_id]
    assert out["disc/input_ids"][4][2] == cased.vocab["##é"]

    def finetuned(batch, **extra):
        n = len(batch["input_ids"])
        features = {**batch, "task_id": np.zeros(n, np.int32),
                    "mnli_label_ids": np.zeros(n, np.int32),
                    "sst_label_ids": np.zeros(n, np.int32), "sts_targets": np.zeros(n, np.float32),
                    "chunk_labels": np.zeros((n, L), np.int32),
                    "chunk_labeled_positions": np.zeros((n, L), np.int32),
                    "chunk_labels_mask": np.zeros((n, L), np.float32)}
        features.update(extra)
        return {k: v.numpy() for k, v in model(features, training=False).items()}

    for key, batch in (("mnli", pair), ("sst", single)):
        check_ids(key, batch)
        logits = finetuned(batch)[f"{key}_logits"]
        np.testing.assert_allclose(out[f"{key}/logits"], logits, atol=1e-5)
        labels = np.argmax(logits, -1)
        np.testing.assert_array_equal(out[f"{key}/label_ids"], labels)
        names = setup["tasks"][0 if key == "mnli" else 1].LABELS
        assert list(out[f"{key}/labels"].astype(str)) == [names[i] for i in labels]
        np.testing.assert_allclose(out[f"{key}/probabilities"].sum(-1), 1.0, atol=1e-5)
    check_ids("sts", pair)
    predictions = finetuned(pair)["sts_predictions"]
    np.testing.assert_allclose(out["sts/predictions"], predictions, atol=1e-5)
    np.testing.assert_allclose(out["sts/scores"], predictions * 5.0, atol=1e-4)

    rows = [chunk.featurize(tagging.TaggingExample("chunk", 0, words=t.split(),
                                                   labels=[0] * len(t.split())), False)[0]
            for t in TAGGING_TEXTS]
    tagged = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    check_ids("chunk", tagged)
    np.testing.assert_array_equal(out["chunk/labeled_positions"],
                                  tagged["chunk_labeled_positions"])
    logits = finetuned(tagged, **{k: tagged[k] for k in (
        "chunk_labeled_positions", "chunk_labels_mask")})["chunk_logits"]
    for row, text in enumerate(TAGGING_TEXTS):
        words = text.split()
        n = int(tagged["chunk_labels_mask"][row].sum())
        assert list(out["chunk/words"][row][:len(words)].astype(str)) == words
        np.testing.assert_allclose(out["chunk/tag_logits"][row, :n], logits[row, :n],
                                   atol=1e-5)
        ids = np.argmax(logits[row, :n], -1)
        np.testing.assert_array_equal(out["chunk/tag_ids"][row, :len(words)],
                                      list(ids) + [-1] * (len(words) - n))
        assert list(out["chunk/tags"][row, :n].astype(str)) == [CHUNK_TAGS[i] for i in ids]
    # 9 words: 4 fit (the original's conservative rule); 20 words: none; one long word
    # overflows L.
    assert [int(m.sum()) for m in tagged["chunk_labels_mask"]] == [6, 4, 4, 0, 0, 1, 2]


def test_output_is_written_atomically(tmp_path):
    out = tmp_path / "model"

    def write(text):
        def fn(directory):
            (tmp_path / directory / "saved_model.pb").write_text(text)
        return fn

    def interrupted(directory):
        write("partial")(directory)
        raise KeyboardInterrupt

    export._write_atomically(str(out), False, write("first"))
    with pytest.raises(export.ExportError, match="exists: pass --overwrite"):
        export._write_atomically(str(out), False, write("second"))
    with pytest.raises(KeyboardInterrupt):
        export._write_atomically(str(out), True, interrupted)
    assert (out / "saved_model.pb").read_text() == "first"
    export._write_atomically(str(out), True, write("third"))
    assert (out / "saved_model.pb").read_text() == "third"
    assert os.listdir(tmp_path) == ["model"]  # no temporary or old copy left behind


@pytest.mark.parametrize("lower", [True, False])
def test_in_graph_tokenizer_matches_full_tokenizer_on_the_unicode_fixture(lower):
    """The graph's tokenizer (as exported) on the bundled BERT vocab and the tokenizer
    fixture: English plus accents, CJK, emoji, mathematical letters, full-width forms,
    ligatures, dotted I, sharp s, final sigma, combining marks, control characters..."""
    import tensorflow as tf
    with open(MIXED, encoding="utf-8", newline="") as f:
        lines = f.read().split("\n")[:-1]
    lines += ["\u00c9t\u00e9 \u00e0 Paris, na\u00efve caf\u00e9s", "x" * 201, "\u00e9" * 150]
    full = FullTokenizer(default_vocab_file(), do_lower_case=lower)
    tokens = [full.inv_vocab[i] for i in range(full.vocab_size)]
    length = 32
    encoder = serving_text.TextEncoder(tokens, full.special_ids, lower, length)
    got = encoder.word_pieces(tf.constant(lines)).to_list()
    expected = full.encode_batch(lines)
    bad = [ascii(lines[i][:60]) for i in range(len(lines)) if got[i] != expected[i]]
    assert not bad, bad
    # Pairs of every length combination the fixture gives: BERT's truncation.
    task = glue.MNLI("", full, length)
    features = encoder.encode(tf.constant(lines[:-1]), tf.constant(lines[1:]))
    rows = [_features(task, full, a, b) for a, b in itertools.pairwise(lines)]
    for name, value in _batch(rows).items():
        np.testing.assert_array_equal(features[name].numpy(), value, name)


def test_bfloat16_export_runs_the_model_under_xla_and_agrees_with_float32(setup, tmp_path):
    import keras
    import tensorflow as tf
    outputs = {}
    for precision in ("float32", "bfloat16"):
        for name, argv in (("disc", ["--checkpoint", setup["pre"]]),
                           ("sst", ["--checkpoint", setup["ft"], "--task_name", "sst",
                                    "--vocab_file", setup["vocab"]])):
            directory = str(tmp_path / f"{name}_{precision}")
            assert export.main(argv + ["--output", directory, "--max_seq_length", str(L),
                                       f"--mixed_precision={precision}"]) == 0
            assert keras.mixed_precision.global_policy().name == "float32"  # restored
            with open(os.path.join(directory, "saved_model.pb"), "rb") as f:
                assert (b"_XlaMustCompile" in f.read()) == (precision == "bfloat16")
            served = tf.saved_model.load(directory).signatures["serving_default"]
            outputs[name, precision] = served(text=tf.constant(TEXTS))["logits"].numpy()
    for name in ("disc", "sst"):
        fp32, bf16 = outputs[name, "float32"], outputs[name, "bfloat16"]
        assert not np.array_equal(fp32, bf16)  # computed in another precision
        np.testing.assert_allclose(bf16, fp32, atol=0.05 + 0.02 * np.abs(fp32).max())
    assert export.main(["--checkpoint", setup["pre"], "--output", str(tmp_path / "x"),
                        "--mixed_precision=int8"]) == 2
    with pytest.raises(export.ExportError, match="--mixed_precision must be one of"):
        export.export_checkpoint(setup["pre"], str(tmp_path / "x"), mixed_precision="int8")
