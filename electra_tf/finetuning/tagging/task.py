"""The tagging tasks (spec 6.6): :class:`TaggingTask` (reading, tag mapping, features, head,
scorer), ``chunk`` as the original and the users' ``conll:<name>`` tasks."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any, Callable, Dict, List, Optional, Sequence

from electra_tf.finetuning.tagging.aligner import WordAligner, truncate_and_position
from electra_tf.finetuning.tagging.names import (CHUNK, CONLL_OPTIONS, CONLL_PREFIX,
                                                 TASK_NAME_RE, parse_conll_task_name)
from electra_tf.finetuning.tagging.reader import (DEBUG_MAX_SENTENCES, SPLITS, Sentence,
                                                  read_conll, read_text)
from electra_tf.finetuning.tagging.scoring import SpanF1Scorer
from electra_tf.finetuning.tagging.settings import TaggingSettings
from electra_tf.finetuning.tagging.spans import get_span_function, spans_to_bioes, split_tag
from electra_tf.finetuning.task import (Example, FeatureSpecs, Task, TaskDataError, log,
                                        pad_to, path_exists)
from electra_tf.io_utils import write_text_atomic


@dataclasses.dataclass
class TaggingExample(Example):
    """One sentence.

    Attributes:
      words: [n] words as in the file.
      tags: [n] BIOES tags (after span conversion).
      labels: [n] tag ids.
    """

    words: List[str] = dataclasses.field(default_factory=list)
    tags: List[str] = dataclasses.field(default_factory=list)
    labels: List[int] = dataclasses.field(default_factory=list)


class TaggingTask(Task):
    """Span tagging on CoNLL-format files (spec 6.6).

    Args:
      name: task name: the feature prefix and head scope ``task_specific/<name>``; letters,
        digits and ``_``.
      data_dir: directory of ``<split>.txt`` files.
      tokenizer: a WordPiece tokenizer (``vocab``, ``special_ids``).
      max_seq_length: L (>= 3).
      debug: read at most 101 sentences per file; mapping file gets a ``debug_`` prefix.
      task_id: index of this task in the run's task list (the ``task_id`` feature).
      label_mapping_dir: where the tag mapping JSON is cached (the original's preprocessed
        data directory); None keeps it in memory only.
      column: tag column (-1 = last).
      lower_case: force lower-casing and accent stripping of the words.
      span_rule: ``"electra"`` (:func:`spans_electra`) or ``"typed"`` (:func:`spans_typed`),
        used both to convert the file tags and to score.
      keep_last_unterminated: keep a last sentence with no blank line after it.
    """

    export_kind = "tagging"

    def __init__(self, name: str, data_dir: str, tokenizer, max_seq_length: int,
                 debug: bool = False, *, task_id: int = 0,
                 label_mapping_dir: Optional[str] = None, column: int = -1,
                 lower_case: bool = True, span_rule: str = "electra",
                 keep_last_unterminated: bool = False):
        if not TASK_NAME_RE.match(name):
            raise ValueError(f"tagging task name {name!r} must be letters, digits and '_' "
                             "(it names features and the head's variable scope)")
        if max_seq_length < 3:
            raise ValueError(f"max_seq_length {max_seq_length} < 3 cannot hold a tagged word")
        super().__init__(name, data_dir, tokenizer, max_seq_length, debug)
        self.task_id = task_id
        self.label_mapping_dir = label_mapping_dir
        self.column = column
        self.lower_case = lower_case
        self.span_rule = span_rule
        self._spans = get_span_function(span_rule)
        self.keep_last_unterminated = keep_last_unterminated
        self.aligner = WordAligner(tokenizer, lower_case=lower_case)
        self._label_mapping: Optional[Dict[str, int]] = None
        self._sentences: Dict[str, List[Sentence]] = {}

    # -- files ---------------------------------------------------------------

    def split_path(self, split: str) -> str:
        return os.path.join(self.data_dir, split + ".txt")

    @property
    def label_mapping_path(self) -> Optional[str]:
        if self.label_mapping_dir is None:
            return None
        prefix = "debug_" if self.debug else ""
        return os.path.join(self.label_mapping_dir, f"{prefix}{self.name}_label_mapping.json")

    def _read_sentences(self, split: str) -> List[Sentence]:
        if split in self._sentences:
            return self._sentences[split]
        path = self.split_path(split)
        if not path_exists(path):
            raise TaskDataError(
                f"{self.name}: the {split!r} split file {path} does not exist. Expected "
                f"layout: <data-dir>/finetuning_data/{self.name}/{{train,dev,test}}.txt in "
                "CoNLL format (word first, tag last, blank line between sentences)")
        sentences, dropped = read_conll(
            path, self.column, DEBUG_MAX_SENTENCES if self.debug else None,
            self.keep_last_unterminated)
        if dropped:
            log.warning("%s: %s ends without a blank line; its last sentence (%d words) is "
                        "dropped, as in the original", self.name, path, dropped)
        for sentence in sentences:
            for offset, tag in enumerate(sentence.tags):
                try:
                    split_tag(tag, aliases=self.span_rule == "typed")
                except ValueError as e:
                    raise TaskDataError(f"{path} line {sentence.line + offset}: {e}") from None
        self._sentences[split] = sentences
        return sentences

    def _bioes(self, tags: Sequence[str]) -> List[str]:
        return spans_to_bioes(self._spans(tags), len(tags))

    # -- tag mapping ---------------------------------------------------------

    @property
    def label_mapping(self) -> Dict[str, int]:
        """BIOES tag -> id: sorted tags of every existing split file, cached (JSON)."""
        if self._label_mapping is not None:
            return self._label_mapping
        path = self.label_mapping_path
        if path is not None and path_exists(path):
            try:
                mapping = json.loads(read_text(path))
            except ValueError as e:
                raise TaskDataError(f"{path}: unreadable tag mapping ({e}); delete it") from e
            if (not isinstance(mapping, dict)
                    or sorted(mapping.values()) != list(range(len(mapping)))):
                raise TaskDataError(f"{path}: not a tag -> id mapping; delete it")
            self._label_mapping = {str(k): int(v) for k, v in mapping.items()}
            return self._label_mapping
        tags = set()
        found = []
        for split in SPLITS:
            if not path_exists(self.split_path(split)):
                continue
            found.append(split)
            for sentence in self._read_sentences(split):
                tags.update(self._bioes(sentence.tags))
        if not found:
            raise TaskDataError(f"{self.name}: none of {', '.join(s + '.txt' for s in SPLITS)}"
                                f" exists in {self.data_dir}")
        mapping = {tag: i for i, tag in enumerate(sorted(tags))}
        if path is not None:
            log.info("%s: writing the tag mapping (%d tags from %s) to %s", self.name,
                     len(mapping), ", ".join(found), path)
            write_text_atomic(path, json.dumps(mapping, indent=1, sort_keys=True) + "\n")
        self._label_mapping = mapping
        return mapping

    @property
    def label_list(self) -> List[str]:
        """[T] tags in id order."""
        mapping = self.label_mapping
        return sorted(mapping, key=mapping.__getitem__)

    @property
    def num_labels(self) -> int:
        """T, the width of the head's dense layer."""
        return len(self.label_mapping)

    # -- Task API ------------------------------------------------------------

    def get_examples(self, split: str) -> List[TaggingExample]:
        """Reads ``split``; example ids are sentence indices in the file."""
        sentences = self._read_sentences(split)
        mapping = self.label_mapping
        examples = []
        for eid, sentence in enumerate(sentences):
            tags = self._bioes(sentence.tags)
            try:
                labels = [mapping[t] for t in tags]
            except KeyError as e:
                where = self.label_mapping_path or "the tag mapping"
                raise TaskDataError(
                    f"{self.split_path(split)} line {sentence.line}: tag {e.args[0]!r} is not "
                    f"in {where} (stale cache from other data? delete it)") from None
            examples.append(TaggingExample(task_name=self.name, eid=eid,
                                           words=list(sentence.words), tags=tags,
                                           labels=labels))
        return examples

    def featurize(self, example: TaggingExample, is_training: bool) -> List[Dict[str, Any]]:
        """One sentence -> one feature dict (``is_training`` is unused).

        Returns:
          ``input_ids``, ``input_mask``, ``segment_ids`` (1 for every real token **[QUIRK]**)
          [L]; ``task_id``; ``<name>_eid``; ``<name>_labels`` [L] (word tag ids, cut/padded
          to L); ``<name>_labeled_positions`` [L]; ``<name>_labels_mask`` [L] float.
        """
        length = self.max_seq_length
        tokens, positions = truncate_and_position(self.aligner.align(example.words), length)
        input_ids = [self.vocab_id(t) for t in tokens]
        return [{
            "input_ids": pad_to(input_ids, length),
            "input_mask": pad_to([1] * len(input_ids), length),
            "segment_ids": pad_to([1] * len(input_ids), length),
            "task_id": self.task_id,
            self.name + "_eid": int(example.eid),
            self.name + "_labels": pad_to(example.labels[:length], length),
            self.name + "_labels_mask": ([1.0] * len(positions)
                                         + [0.0] * (length - len(positions))),
            self.name + "_labeled_positions": pad_to(positions, length),
        }]

    def vocab_id(self, token: str) -> int:
        special = self.tokenizer.special_ids
        if token == "[CLS]":
            return special["cls"]
        if token == "[SEP]":
            return special["sep"]
        return self.aligner.vocab[token]

    def feature_specs(self) -> FeatureSpecs:
        length = self.max_seq_length
        return {self.name + "_eid": ((), "int64"),
                self.name + "_labels": ((length,), "int64"),
                self.name + "_labels_mask": ((length,), "float32"),
                self.name + "_labeled_positions": ((length,), "int64")}

    def get_scorer(self, split: str = "dev") -> SpanF1Scorer:
        return SpanF1Scorer(self.name, self.label_list, span_rule=self.span_rule)

    # -- head, cache, serving -------------------------------------------

    def build_head(self):
        from electra_tf.finetuning.heads import TaggingHead  # TF only when modelling
        return TaggingHead(self.name, self.num_labels)

    def source_file(self, split: str) -> Optional[str]:
        return self.split_path(split)

    def cache_options(self) -> Dict[str, Any]:
        mapping = json.dumps(self.label_mapping, sort_keys=True)
        return {**super().cache_options(), "column": self.column,
                "lower_case": self.lower_case, "span_rule": self.span_rule,
                "keep_last_unterminated": self.keep_last_unterminated,
                "label_mapping_sha256": hashlib.sha256(mapping.encode()).hexdigest()}

    def serving_info(self) -> Dict[str, Any]:
        return {"task": self.name, "kind": self.export_kind, "pair": False,
                "labels": self.label_list, "lower_case": bool(self.lower_case)}


class ChunkingTask(TaggingTask):
    """CoNLL-2000 chunking (``chunk``), as the original: last column, forced lower-casing,
    the original span rule, unterminated last sentence dropped."""

    NAME = CHUNK

    def __init__(self, data_dir: str, tokenizer, max_seq_length: int, debug: bool = False,
                 *, task_id: int = 0, label_mapping_dir: Optional[str] = None):
        super().__init__(self.NAME, data_dir, tokenizer, max_seq_length, debug,
                         task_id=task_id, label_mapping_dir=label_mapping_dir, column=-1,
                         lower_case=True, span_rule="electra", keep_last_unterminated=False)


class ConllTaggingTask(TaggingTask):
    """A user span-tagging task on CoNLL-format files (``conll:<name>``).

    Its reading and span rule are the run's tagging settings (:class:`TaggingSettings`,
    section ``tagging`` of ``configs/finetuning.json``), which differ from ``chunk`` where
    the original's choice only suits CoNLL-2000: the type-aware span rule (IOB1 data and
    type changes read correctly) and the last sentence kept even without a trailing blank
    line. ``options`` (column, lower_case, span_rule, keep_last_unterminated: a name's own,
    ``conll:ner:column=3``) replace single settings.
    """

    def __init__(self, name: str, data_dir: str, tokenizer, max_seq_length: int,
                 debug: bool = False, *, task_id: int = 0,
                 label_mapping_dir: Optional[str] = None,
                 settings: Optional[TaggingSettings] = None, **options):
        settings = (settings or TaggingSettings.defaults()).replace(**options)
        self.settings = settings
        super().__init__(name, data_dir, tokenizer, max_seq_length, debug, task_id=task_id,
                         label_mapping_dir=label_mapping_dir, column=settings.column,
                         lower_case=settings.lower_case, span_rule=settings.span_rule,
                         keep_last_unterminated=settings.keep_last_unterminated)


TaskFactory = Callable[..., TaggingTask]

def make_conll_task(name: str, **options) -> TaskFactory:
    """A factory ``f(data_dir, tokenizer, max_seq_length, debug=False, **kwargs)`` building
    ``ConllTaggingTask(name, ...)`` with ``options`` (column, lower_case, span_rule,
    keep_last_unterminated) -- for a registry entry such as
    ``"ner": make_conll_task("ner", column=3)``."""
    unknown = sorted(set(options) - set(CONLL_OPTIONS))
    if unknown:
        raise ValueError(f"unknown conll task option(s) {unknown}; known: "
                         f"{sorted(CONLL_OPTIONS)}")
    if not TASK_NAME_RE.match(name):
        raise ValueError(f"tagging task name {name!r} must be letters, digits and '_'")

    def factory(data_dir: str, tokenizer, max_seq_length: int, debug: bool = False,
                **kwargs) -> ConllTaggingTask:
        return ConllTaggingTask(name, data_dir, tokenizer, max_seq_length, debug,
                                **{**options, **kwargs})

    factory.task_name = name  # type: ignore[attr-defined]
    return factory


def get_tagging_task(spec: str, data_dir: str, tokenizer, max_seq_length: int,
                     settings: Optional[TaggingSettings] = None, **kwargs) -> TaggingTask:
    """Builds ``chunk`` or ``conll:<name>[:options]`` (kwargs: debug, task_id,
    label_mapping_dir; and for conll tasks any option). ``settings``: the run's tagging
    settings, the defaults of ``conll:`` tasks (``chunk`` reads as the original). ``data_dir``
    must be the directory of the task *name* (``<data-dir>/finetuning_data/<name>``)."""
    if spec == CHUNK:
        return ChunkingTask(data_dir, tokenizer, max_seq_length, **kwargs)
    if spec.startswith(CONLL_PREFIX):
        name, options = parse_conll_task_name(spec)
        return make_conll_task(name, **options)(data_dir, tokenizer, max_seq_length,
                                                settings=settings, **kwargs)
    raise ValueError(f"unknown tagging task {spec!r}; known: '{CHUNK}', '{CONLL_PREFIX}<name>'")
