"""Exports ELECTRA as a TensorFlow SavedModel that takes raw strings.

    python -m electra_tf.export --checkpoint models/electra_small --output exported/disc
    python -m electra_tf.export --checkpoint finetuning_models/mnli_model_1 \\
        --task_name mnli --vocab_file vocab.txt --output exported/mnli

Without ``--task_name`` the pre-trained discriminator is exported (replaced-token
detection); with it, the fine-tuned heads of those tasks (comma-separated; GLUE
classification and regression, and the tagging tasks ``chunk`` / ``conll:<name>``).
Question answering heads are not exported (their answer extraction needs document
windows and span decoding outside the graph).

Signatures (every input is a string vector [B]; L = ``--max_seq_length``):

* discriminator: ``serving_default(text)`` and ``pair(text_a, text_b)`` ->
  ``logits``, ``fake_probabilities`` (sigmoid of the logit, 0 at padding), ``is_fake``
  (logit > 0) [B, L] per word-piece, ``tokens`` [B, L] (the word-pieces, "" at padding)
  and the model inputs ``input_ids``, ``input_mask``, ``segment_ids`` [B, L].
* classification task ``<task>``: ``text`` or, for sentence-pair tasks, ``text_a`` and
  ``text_b`` -> ``logits``, ``probabilities`` [B, C], ``label_ids`` [B], ``labels`` [B]
  (the label names, e.g. MNLI's "entailment"), plus the inputs and ``tokens``.
* regression task (``sts``): ``predictions`` [B] (the model output, trained on the
  0-1 target scale) and ``scores`` [B] (on the task's scale, 0-5 for STS).
* tagging task: ``text`` (words are split on whitespace, as the CoNLL words of training,
  and word-pieced as the tagging tasks do: punctuation split, no CJK split) -> ``words``,
  ``word_mask``, ``tag_ids`` (-1 where a word got no prediction: it did not fit into L
  under the original's conservative truncation), ``tags`` [B, W] (BIOES tag names, ""
  without a prediction), ``tag_logits`` [B, W, T], ``labeled_positions`` [B, L] and the
  inputs (segment ids 1, as in tagging fine-tuning).

The first task is also ``serving_default``. Load with ``tf.saved_model.load(DIR)`` in
any process that has tensorflow and ``import tensorflow_text`` (for its ops); electra_tf
is not needed. ``assets/vocab.txt`` is the vocabulary and
``assets.extra/electra_export.json`` describes the signatures, labels and options.

Tokenization runs in the graph (``electra_tf/serving_text.py``): BERT's text cleanup
(drop NUL, U+FFFD and control, format, private-use and unassigned characters; map tab,
newline, CR and space separators to " "), then, when lower-casing, Unicode lower-casing,
NFD and removal of combining marks (category Mn), all with TensorFlow string ops, then
tensorflow-text's ``FastWordpieceTokenizer`` (whitespace, punctuation and CJK splitting,
greedy longest-match WordPiece; a word of more than 200 characters becomes [UNK]), then
``[CLS] a [SEP] b [SEP]`` with BERT's pair truncation (pop the last word-piece of the
longer text, the second one on ties; a single text keeps L - 2 word-pieces; an empty
``text_b`` counts as absent), segment ids 0/1 and zero padding to L: the rule of
fine-tuning, detection and scoring (``electra_tf/preprocessing.py``). tensorflow-text's
own normaliser (``BertTokenizer(lower_case=True)``) is not used: it case-folds with NFKC,
which maps mathematical alphanumerics, ligatures, full-width forms, "ß" and more to other
letters where BERT's rules (our ``FullTokenizer``) do not.

Where the in-graph ids can differ from ``FullTokenizer``'s: only for rare characters
whose Unicode data differ between the Python that runs ``FullTokenizer`` (its
``unicodedata``, 14.0 on Python 3.11) and TensorFlow's RE2 and ICU tables. Characters
assigned in a newer Unicode version than Python's (e.g. CJK Extension H,
U+31350-U+323AF, or U+0CF3 of Unicode 15) are dropped by Python as unassigned but kept
in the graph, where they become [UNK] or join the word around them; about 40 letters
added in Unicode 14 (e.g. U+2C2F) are not lower-cased by TensorFlow's older ICU, which
changes ids only if the vocabulary holds their lower-case forms; a few combining marks
new in Unicode 15 are stripped in the graph only. With tensorflow-text 2.21 on Python
3.11, a sweep of every Basic Multilingual Plane code point (and a sample of the others),
3000 random strings and the tokenizer fixtures gave no other difference. Bytes that are
not UTF-8 are dropped, as ``FullTokenizer`` does (``errors="ignore"``).

do_lower_case: the graph lower-cases and strips accents iff ``do_lower_case`` (BERT ties
accent stripping to lower-casing). For a pre-trained discriminator the default is the
``do_lower_case`` of ``pretraining_config.json`` beside the checkpoint (True without
one); fine-tuning checkpoints do not record it, so the default is True (the fine-tuning
default): pass ``--nodo_lower_case`` for a cased vocabulary. Tagging tasks use their own
``lower_case`` option (``chunk`` always lower-cases; ``conll:<name>:lower_case=false``),
as in fine-tuning, so pass the task name exactly as fine-tuning was given it.

The SavedModel is written to a temporary directory beside ``--output`` and renamed into
place; an existing ``--output`` is refused unless ``--overwrite``, and ``--overwrite``
replaces only an earlier export: a directory holding anything else (a pre-training run, a
checkpoint, the ``--checkpoint`` being read) is never written into or over.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Sequence

from electra_tf import cli
from electra_tf.io_utils import OutputRefused, first_line, refuse_foreign_output, staged_directory
from electra_tf.preprocessing import check_max_seq_length

DEFAULT_MAX_SEQ_LENGTH = 128
# --mixed_precision: the exported model's compute precision (weights stay float32).
PRECISIONS = ("float32", "bfloat16", "float16")
INFO_FILE = "electra_export.json"
# Recorded in the directories export writes (io_utils.OUTPUT_RECORD): --overwrite replaces
# only those.
COMMAND = "electra_tf.export"


class ExportError(ValueError):
    """A user-facing problem with the checkpoint, the vocabulary, the tasks or the output."""


def _tf():
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the ops)
    return tf


def _text_encoder(vocab_tokens, special_ids, do_lower_case: bool, max_seq_length: int):
    """The SavedModel's in-graph tokenizer (imports tensorflow and tensorflow_text)."""
    from electra_tf.serving_text import TextEncoder
    return TextEncoder(vocab_tokens, special_ids, do_lower_case, max_seq_length)


# ---------------------------------------------------------------------------
# Serving functions
# ---------------------------------------------------------------------------

def _string_spec(name):
    tf = _tf()
    return tf.TensorSpec([None], tf.string, name=name)


def _serving(*input_names):
    """tf.function over [B] string inputs; only its concrete function is saved (as a
    signature), so saving does not trace it again."""
    tf = _tf()
    return tf.function(autograph=False,
                       input_signature=[_string_spec(name) for name in input_names])


def _forward(model, fn):
    """``fn`` as it is, or compiled by XLA when ``model`` computes in bfloat16/float16
    (:func:`electra_tf.detection.use_xla`, measured per machine). The SavedModel keeps the
    function's jit_compile attribute, so whoever serves it compiles it too. Tokenization
    (string ops) stays outside."""
    from electra_tf.detection import use_xla
    return _tf().function(fn, jit_compile=True) if use_xla(model) else fn


def _discriminator_functions(root, discriminator):
    """``{signature: concrete function}`` of the replaced-token detector."""
    tf = _tf()
    forward = _forward(discriminator, lambda features: tf.cast(
        discriminator(features, training=False)["logits"], tf.float32))

    def run(features):
        logits = forward(features)
        mask = features["input_mask"] > 0
        return {**features,
                "tokens": root.encoder.tokens(features["input_ids"], features["input_mask"]),
                "logits": logits,
                "fake_probabilities": tf.where(mask, tf.sigmoid(logits), 0.0),
                "is_fake": tf.logical_and(mask, logits > 0)}

    @_serving("text")
    def detect(text):
        return run(root.encoder.encode(text))

    @_serving("text_a", "text_b")
    def detect_pair(text_a, text_b):
        return run(root.encoder.encode(text_a, text_b))

    return {"serving_default": detect.get_concrete_function(),
            "pair": detect_pair.get_concrete_function()}


def _sentence_function(root, model, head, info):
    """A classification or regression head on [CLS]; ``info`` describes the task."""
    tf = _tf()
    name = info["task"]
    encode = _forward(model, lambda ids, mask, segments: model.encoder(
        ids, mask, segments, training=False)["pooled_output"])

    def run(features):
        pooled = encode(features["input_ids"], features["input_mask"],
                        features["segment_ids"])
        batch = tf.shape(features["input_ids"])[0]
        dummy = {f"{name}_label_ids": tf.zeros([batch], tf.int32),
                 f"{name}_targets": tf.zeros([batch], tf.float32)}
        out = head(pooled, dummy, training=False)
        result = {**features,
                  "tokens": root.encoder.tokens(features["input_ids"], features["input_mask"])}
        if info["kind"] == "classification":
            logits = tf.cast(out[f"{name}_logits"], tf.float32)
            label_ids = tf.argmax(logits, -1, output_type=tf.int32)
            result.update(logits=logits, probabilities=tf.nn.softmax(logits, -1),
                          label_ids=label_ids,
                          labels=tf.gather(tf.constant(info["labels"]), label_ids))
        else:
            predictions = tf.cast(out[f"{name}_predictions"], tf.float32)
            result.update(predictions=predictions,
                          scores=predictions * info["scale"] + info["offset"])
        return result

    if info["pair"]:
        @_serving("text_a", "text_b")
        def serve(text_a, text_b):
            return run(root.encoder.encode(text_a, text_b))
    else:
        @_serving("text")
        def serve(text):
            return run(root.encoder.encode(text))
    return serve


def _tagging_function(root, model, head, info):
    tf = _tf()
    name = info["task"]
    encode = _forward(model, lambda ids, mask, segments: model.encoder(
        ids, mask, segments, training=False)["sequence_output"])

    @_serving("text")
    def serve(text):
        f = root.encoder.encode_words(text, info["lower_case"])
        features = {k: f[k] for k in ("input_ids", "input_mask", "segment_ids")}
        sequence = encode(features["input_ids"], features["input_mask"],
                          features["segment_ids"])
        zeros = tf.zeros_like(features["input_ids"])
        out = head(sequence,
                   {f"{name}_labeled_positions": f["labeled_positions"],
                    f"{name}_labels": zeros, f"{name}_labels_mask": f["labels_mask"]},
                   training=False)
        words = f["words"]
        n_words = tf.cast(words.row_lengths(), tf.int32)
        width = tf.reduce_max(tf.concat([n_words, [0]], 0))
        logits = tf.cast(out[f"{name}_logits"], tf.float32)           # [B, L, T]
        logits = tf.pad(logits, [[0, 0], [0, tf.maximum(width - tf.shape(logits)[1], 0)],
                                 [0, 0]])[:, :width]
        labeled = tf.sequence_mask(f["num_labeled"], width)
        tag_ids = tf.where(labeled, tf.argmax(logits, -1, output_type=tf.int32), -1)
        tags = tf.where(labeled, tf.gather(tf.constant(info["labels"]),
                                           tf.maximum(tag_ids, 0)), "")
        return {**features, "labeled_positions": f["labeled_positions"],
                "tokens": root.encoder.tokens(features["input_ids"], features["input_mask"]),
                "words": words.to_tensor(default_value=""),
                "word_mask": tf.sequence_mask(n_words, width),
                "tag_logits": tf.where(labeled[..., None], logits, 0.0),
                "tag_ids": tag_ids, "tags": tags}
    return serve


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------

def _is_earlier_export(directory: str) -> bool:
    """An export of a version that wrote no output record: its description file."""
    return os.path.isfile(os.path.join(directory, "assets.extra", INFO_FILE))


def _check_output(output: str, overwrite: bool) -> str:
    """The absolute ``output``; ExportError unless it is new, empty, or (with
    ``overwrite``) an earlier export. Anything else there is never replaced."""
    if "://" in output:
        raise ExportError(f"--output must be a local directory (got {output}); copy the "
                          "exported directory to remote storage afterwards")
    output = os.path.abspath(output)
    try:
        refuse_foreign_output(output, COMMAND, own=_is_earlier_export)
    except OutputRefused as e:
        raise ExportError(str(e)) from None
    if os.path.lexists(output) and not overwrite:
        raise ExportError(f"{output} exists: pass --overwrite to replace it")
    return output


def _check_not_inside(output: str, checkpoint: str) -> None:
    """Refuses an ``output`` that is, or contains, the checkpoint being exported: the
    SavedModel would replace it (e.g. ``--checkpoint <run>/discriminator --output <run>``)."""
    if "://" in checkpoint:
        return
    output, source = os.path.abspath(output), os.path.abspath(checkpoint)
    if os.path.commonpath([source, output]) == output:
        raise ExportError(f"--output {output} contains --checkpoint {checkpoint}: the export "
                          "would replace the checkpoint it reads; choose another --output")


def _write_atomically(output: str, overwrite: bool, write) -> str:
    """Calls ``write(tmp_dir)`` on a fresh sibling directory, then renames it to ``output``
    (recording that export wrote it)."""
    output = _check_output(output, overwrite)
    try:
        with staged_directory(output, overwrite, command=COMMAND,
                              own=_is_earlier_export) as tmp:
            write(tmp)
    except OutputRefused as e:  # written there meanwhile by someone else
        raise ExportError(str(e)) from None
    return output


def _save(root, signatures: dict, info: dict, vocab_file: str, output: str,
          overwrite: bool) -> str:
    tf = _tf()

    def write(directory):
        tmp_vocab = os.path.join(directory, ".vocab.txt")
        shutil.copyfile(vocab_file, tmp_vocab)
        root.vocab_file = tf.saved_model.Asset(tmp_vocab)
        tf.saved_model.save(root, directory, signatures=signatures)
        os.remove(tmp_vocab)
        assets = os.path.join(directory, "assets")
        if os.path.exists(os.path.join(assets, ".vocab.txt")):
            os.replace(os.path.join(assets, ".vocab.txt"), os.path.join(assets, "vocab.txt"))
        extra = os.path.join(directory, "assets.extra")
        os.makedirs(extra, exist_ok=True)
        import tensorflow_text
        described = info.get("signatures", {})
        meta = {**info, "tensorflow_version": tf.__version__,
                "tensorflow_text_version": getattr(tensorflow_text, "__version__", None),
                "signatures": {name: {
                    **described.get(name, {}),
                    "inputs": sorted(spec.name for spec in
                                     tf.nest.flatten(fn.structured_input_signature)),
                    "outputs": sorted(fn.structured_outputs)}
                    for name, fn in signatures.items()}}
        with open(os.path.join(extra, INFO_FILE), "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=2, ensure_ascii=False)
            f.write("\n")

    return _write_atomically(output, overwrite, write)


def _vocab(vocab_file: str | None, vocab_size: int, source: str):
    from electra_tf import tokenization
    if not vocab_file:
        raise ExportError(f"no vocab.txt beside {source}: pass --vocab_file (fine-tuning "
                          "used electra_tf/assets/vocab.txt unless given --vocab_file)")
    if not os.path.isfile(vocab_file):
        raise ExportError(f"vocab file not found: {vocab_file}")
    try:
        tokenizer = tokenization.FullTokenizer(vocab_file)
    except ValueError as e:
        raise ExportError(str(e)) from e
    if tokenizer.vocab_size != vocab_size:
        raise ExportError(f"{vocab_file} has {tokenizer.vocab_size} tokens but the model's "
                          f"embedding table has {vocab_size} rows: wrong --vocab_file?")
    tokens = [tokenizer.inv_vocab[i] for i in range(tokenizer.vocab_size)]
    return tokens, tokenizer.special_ids


def _check_length(max_seq_length: int | None, transformer_config, pair: bool) -> int:
    limit = transformer_config.max_position_embeddings
    if max_seq_length is None:
        max_seq_length = min(DEFAULT_MAX_SEQ_LENGTH, limit)
    return check_max_seq_length(max_seq_length, limit, pair=pair, error=ExportError,
                                name="--max_seq_length")


def export_discriminator(discriminator, vocab_file: str, output: str, *,
                         do_lower_case: bool = True,
                         max_seq_length: int | None = None,
                         overwrite: bool = False, source: str | None = None) -> str:
    """Writes a SavedModel of a built :class:`~electra_tf.networks.Discriminator`.

    Returns the absolute output directory.
    """
    tf = _tf()
    output = _check_output(output, overwrite)
    config = discriminator.config
    length = _check_length(max_seq_length, config, pair=True)
    tokens, special = _vocab(vocab_file, config.vocab_size, source or "the model")
    root = tf.Module()
    root.encoder = _text_encoder(tokens, special, do_lower_case, length)
    root.model = discriminator
    signatures = _discriminator_functions(root, discriminator)
    info = {"format": 1, "kind": "discriminator", "source": source,
            "do_lower_case": bool(do_lower_case), "max_seq_length": length,
            "vocab_size": len(tokens)}
    return _save(root, signatures, info, vocab_file, output, overwrite)


def task_info(task) -> dict:
    """What the serving function of a fine-tuning task needs (kind, labels, pair input)."""
    if task.export_kind is None:
        raise ExportError(f"task {task.name!r}: {task.no_export_reason}")
    return task.serving_info()


def export_finetuned(model, tasks: Sequence, vocab_file: str, output: str, *,
                     do_lower_case: bool = True,
                     max_seq_length: int | None = None,
                     overwrite: bool = False, source: str | None = None) -> str:
    """Writes a SavedModel of a built :class:`~electra_tf.finetuning.network.FinetuningNetwork`.

    Args:
      model: the model; ``tasks`` are task objects of (some of) its heads, in the order of
        the signatures (the first one is also ``serving_default``).
    Returns the absolute output directory.
    """
    tf = _tf()
    output = _check_output(output, overwrite)
    infos = [task_info(task) for task in tasks]
    names = [info["task"] for info in infos]
    if not names or len(set(names)) != len(names):
        raise ExportError(f"give each task once (got {', '.join(names) or 'none'})")
    length = _check_length(max_seq_length, model.config,
                           pair=any(i["pair"] or i["kind"] == "tagging" for i in infos))
    tokens, special = _vocab(vocab_file, model.config.vocab_size, source or "the model")
    heads = {head.task_name: head for head in model.heads}
    root = tf.Module()
    root.encoder = _text_encoder(tokens, special, do_lower_case, length)
    root.model = model
    signatures, described = {}, {}
    for info in infos:
        if info["task"] not in heads:
            raise ExportError(f"the model has no head for task {info['task']!r} "
                              f"(heads: {', '.join(heads)})")
        head = heads[info["task"]]
        build = _tagging_function if info["kind"] == "tagging" else _sentence_function
        fn = build(root, model, head, info)
        signatures[info["task"]] = fn.get_concrete_function()
        described[info["task"]] = {k: v for k, v in info.items() if k != "task"}
    signatures["serving_default"] = signatures[infos[0]["task"]]
    described["serving_default"] = described[infos[0]["task"]]
    info = {"format": 1, "kind": "finetuned", "source": source,
            "tasks": [i["task"] for i in infos], "do_lower_case": bool(do_lower_case),
            "max_seq_length": length, "vocab_size": len(tokens), "signatures": described}
    return _save(root, signatures, info, vocab_file, output, overwrite)


# ---------------------------------------------------------------------------
# From a checkpoint
# ---------------------------------------------------------------------------

def _task_heads(names) -> list:
    return sorted({n.split("/")[1] for n in names if n.startswith("task_specific/")})


def _check_task_name(spec: str):
    """The task class of ``spec``; ExportError for unknown tasks and tasks without export."""
    from electra_tf.finetuning import registry
    from electra_tf.finetuning.task import TaskDataError
    try:
        cls = registry.task_class(spec)
        registry.task_dir_name(spec)  # parses conll:<name>:<options>
    except (TaskDataError, ValueError) as e:
        raise ExportError(str(e)) from e
    if cls.export_kind is None:
        raise ExportError(f"task {spec!r}: {cls.no_export_reason}")
    return cls


def _finetuning_task(spec: str, tokenizer, max_seq_length: int, label_mapping_dir):
    """The task object of ``spec`` without its data (tagging tasks read their tag names)."""
    from electra_tf.finetuning import registry
    from electra_tf.finetuning.task import TaskDataError
    if _check_task_name(spec).export_kind != "tagging":
        return registry.get_task(spec, "", tokenizer, max_seq_length)
    name = registry.task_dir_name(spec)
    if not label_mapping_dir:
        raise ExportError(f"tagging task {name!r} needs its tag names: pass "
                          "--label_mapping_dir=<the fine-tuning run's preprocessed data "
                          f"directory> (holding {name}_label_mapping.json)")
    path = os.path.join(label_mapping_dir, f"{name}_label_mapping.json")
    if not os.path.isfile(path):
        raise ExportError(f"tag mapping not found: {path}")
    try:
        task = registry.get_task(spec, "", tokenizer, max_seq_length,
                                 label_mapping_dir=label_mapping_dir)
        _ = task.label_mapping  # reads and checks the JSON
    except (ValueError, TaskDataError) as e:
        raise ExportError(str(e)) from e
    return task


def export_checkpoint(checkpoint: str, output: str, task_names: Sequence[str] = (), *,
                      vocab_file: str | None = None, do_lower_case: bool | None = None,
                      max_seq_length: int | None = None, overwrite: bool = False,
                      hparams=None, label_mapping_dir: str | None = None,
                      mixed_precision: str = "float32") -> str:
    """Exports a checkpoint: the discriminator without ``task_names``, else those heads.

    Args:
      checkpoint: what :func:`electra_tf.loading.read_weights` reads (TF1 checkpoint
        prefix/directory, pre-training run directory or ckpt-N, or a Hugging Face
        directory).
      output: the SavedModel directory to create.
      task_names: fine-tuning task names (e.g. ``["mnli"]``), as given to fine-tuning.
      vocab_file: default ``vocab.txt`` beside the checkpoint.
      do_lower_case: default: ``pretraining_config.json``'s beside the checkpoint, else True.
      hparams: PretrainingConfig overrides for the model shape (e.g. attention heads).
      label_mapping_dir: where ``<task>_label_mapping.json`` of tagging tasks is.
      mixed_precision: the exported model's compute precision, "float32", "bfloat16" or
        "float16" (weights stay float32; half precision runs the model under XLA).
    Returns the absolute output directory.
    """
    if mixed_precision not in PRECISIONS:
        raise ExportError(f"--mixed_precision must be one of {', '.join(PRECISIONS)}, "
                          f"got {mixed_precision!r}")
    checkpoint = os.fspath(checkpoint)
    _check_not_inside(output, checkpoint)
    _check_output(output, overwrite)
    from electra_tf import presets
    if "://" not in checkpoint and not os.path.exists(checkpoint) and \
            not os.path.exists(checkpoint + ".index") and presets.find(checkpoint) is None:
        raise ExportError(f"checkpoint not found: {checkpoint}"  # before importing TF
                          f"{presets.unknown_name_hint(checkpoint)}")
    from electra_tf import checkpoints, loading
    from electra_tf.config import ConfigError
    try:
        weights = loading.read_weights(checkpoint, keep_models=not task_names)
    except (checkpoints.CheckpointError, ConfigError) as e:
        raise ExportError(str(e)) from e
    from electra_tf.detection import keras_precision
    with keras_precision(mixed_precision):
        return _export_weights(weights, output, task_names, vocab_file, do_lower_case,
                               max_seq_length, overwrite, hparams, label_mapping_dir)


def _export_weights(weights, output, task_names, vocab_file, do_lower_case, max_seq_length,
                    overwrite, hparams, label_mapping_dir) -> str:
    from electra_tf import checkpoints, loading, tokenization
    from electra_tf.config import ConfigError
    from electra_tf.finetuning.network import FinetuningNetwork
    from electra_tf.finetuning.registry import task_dir_name
    heads = _task_heads(weights.values)
    vocab = vocab_file or weights.vocab_file
    embeddings = weights.values.get("electra/embeddings/word_embeddings")
    if embeddings is None:
        raise ExportError(f"{weights.source} is not an ELECTRA discriminator checkpoint "
                          "(no electra/embeddings/word_embeddings)")
    try:
        if not task_names:
            if not any(n.startswith("discriminator_predictions/") for n in weights.values):
                hint = (f"; it is a fine-tuned checkpoint: pass --task_name (its task heads: "
                        f"{', '.join(heads)})" if heads else "")
                raise ExportError(f"{weights.source} has no replaced-token detection head "
                                  f"(discriminator_predictions/*){hint}")
            _vocab(vocab, embeddings.shape[0], weights.source)
            model = loading.build_from_weights(weights, hparams)
            lower = model.config.do_lower_case if do_lower_case is None else do_lower_case
            return export_discriminator(model.discriminator, vocab, output,
                                        do_lower_case=lower, max_seq_length=max_seq_length,
                                        overwrite=overwrite, source=weights.source)
        for spec in task_names:  # unknown and QA tasks first, then missing heads
            _check_task_name(spec)
        missing = [task_dir_name(spec) for spec in task_names
                   if task_dir_name(spec) not in heads]
        if missing:
            have = f"its task heads: {', '.join(heads)}" if heads else "no task head"
            raise ExportError(f"{weights.source} has no head for task "
                              f"{', '.join(missing)} (task_specific/<task>/*; {have})")
        _vocab(vocab, embeddings.shape[0], weights.source)
        tokenizer = tokenization.FullTokenizer(vocab)
        # The tasks' own max_seq_length is not used: the graph pads to the export's L.
        tasks = [_finetuning_task(spec, tokenizer, max_seq_length or DEFAULT_MAX_SEQ_LENGTH,
                                  label_mapping_dir) for spec in task_names]
        config = loading.config_for_weights(weights, hparams)
        model = FinetuningNetwork(config.discriminator_config(), tasks)
        model.build()
        checkpoints.assign_original_weights(weights.values, model, source=weights.source)
    except (checkpoints.CheckpointError, ConfigError) as e:
        raise ExportError(str(e)) from e
    return export_finetuned(model, tasks, vocab, output,
                            do_lower_case=True if do_lower_case is None else do_lower_case,
                            max_seq_length=max_seq_length, overwrite=overwrite,
                            source=weights.source)


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

def define_flags(flag_values) -> None:
    from absl import flags
    flags.DEFINE_string("checkpoint", None,
                        "TF1 checkpoint (directory or prefix) or Hugging Face directory: a "
                        "pre-training export, a pre-training run directory (its newest "
                        "complete ckpt-N) or one ckpt-N, a Google release, or a fine-tuning "
                        "checkpoint (finetuning_models/<tasks>_model_<trial>)",
                        required=True, flag_values=flag_values)
    flags.DEFINE_string("output", None, "SavedModel directory to create", required=True,
                        flag_values=flag_values)
    flags.DEFINE_string("task_name", "",
                        "fine-tuned task(s) to export, comma-separated (e.g. mnli or rte,sts); "
                        "none: the pre-trained discriminator", flag_values=flag_values)
    flags.DEFINE_alias("task_names", "task_name", flag_values=flag_values)
    flags.DEFINE_string("vocab_file", None, "default: vocab.txt beside the checkpoint",
                        flag_values=flag_values)
    flags.DEFINE_boolean("do_lower_case", None,
                         "lower-case and strip accents in the graph (default: "
                         "pretraining_config.json's value, else true); --nodo_lower_case "
                         "keeps case and accents (cased vocabularies)",
                         flag_values=flag_values)
    flags.DEFINE_integer("max_seq_length", None,
                         "L: inputs are truncated and padded to L word-pieces (default "
                         f"{DEFAULT_MAX_SEQ_LENGTH}, or max_position_embeddings if less)",
                         flag_values=flag_values)
    flags.DEFINE_string("label_mapping_dir", None,
                        "tagging tasks: the fine-tuning run's preprocessed data directory "
                        "(holding <task>_label_mapping.json)", flag_values=flag_values)
    flags.DEFINE_string("hparams", None,
                        "model hparams (JSON or .json path) where the checkpoint's shapes do "
                        "not tell them, e.g. "
                        "'{\"model_hparam_overrides\": {\"num_attention_heads\": 8}}'",
                        flag_values=flag_values)
    flags.DEFINE_enum("mixed_precision", "float32", list(PRECISIONS),
                      "compute precision of the exported model (weights stay float32): "
                      "bfloat16 for TPUs and GPUs with bfloat16 tensor cores; half "
                      "precision runs the model under XLA", flag_values=flag_values)
    flags.DEFINE_boolean("overwrite", False, "replace an earlier export at --output (never "
                         "a directory export did not write)", flag_values=flag_values)


def _user_errors() -> tuple:
    """Exception types reported as one ``error:`` line (TensorFlow is not imported here)."""
    errors = [ExportError, OSError]
    for module, name in (("electra_tf.checkpoints", "CheckpointError"),
                         ("electra_tf.config", "ConfigError")):
        if module in sys.modules:
            errors.append(getattr(sys.modules[module], name))
    return tuple(errors)


def _main(args, positional: list) -> int:
    """Runs the command on the parsed flags ``args`` (absl FlagValues)."""
    if positional:
        raise cli.UsageError(f"unexpected arguments: {' '.join(positional)}")
    tasks = [t.strip() for t in args.task_name.split(",") if t.strip()]
    try:
        out = export_checkpoint(args.checkpoint, args.output, tasks,
                                vocab_file=args.vocab_file, do_lower_case=args.do_lower_case,
                                max_seq_length=args.max_seq_length, overwrite=args.overwrite,
                                hparams=args.hparams, label_mapping_dir=args.label_mapping_dir,
                                mixed_precision=args.mixed_precision)
    except _user_errors() as e:  # evaluated when raised: the lazily imported modules count
        raise ExportError(first_line(e)) from None
    print(f"exported {', '.join(tasks) or 'the discriminator'} to {out}")
    return 0


def main(argv=None) -> int:
    """``python -m electra_tf.export --checkpoint=... --output=...``; returns the exit status."""
    # --help shows the docstring without the usage examples.
    paragraphs = __doc__.split("\n\n")
    return cli.run(define_flags, _main, argv, user_errors=(ExportError,),
                   description="\n\n".join(paragraphs[:1] + paragraphs[2:]))


console_main = cli.console(main)

if __name__ == "__main__":
    sys.exit(main())
