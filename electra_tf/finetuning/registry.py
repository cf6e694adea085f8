"""Task names -> task objects.

Adding a task: write its class in the file of its family (``glue.py``, ``qa.py``,
``tagging.py``, or a new one implementing ``task.Task``) and add one entry to
``_FAMILIES`` below (or to the family's own table, e.g. ``glue.GLUE_TASKS``).
"""

from __future__ import annotations

import difflib
import os
from typing import Callable, Dict, List, Type

from electra_tf.finetuning import glue, qa, tagging
from electra_tf.finetuning.task import Task, TaskDataError

# family -> (does this family own the name?, builder(name, data_dir, tokenizer, L, **kwargs),
#            the class of a name)
_FAMILIES: Dict[str, tuple] = {
    "glue": (lambda name: name in glue.GLUE_TASKS, glue.get_glue_task,
             lambda name: glue.GLUE_TASKS[name]),
    "qa": (lambda name: name in qa.QA_TASKS, qa.get_qa_task, lambda name: qa.QATask),
    "tagging": (tagging.is_tagging_task_name, tagging.get_tagging_task,
                lambda name: tagging.TaggingTask),
}


def known_task_names() -> List[str]:
    return sorted(glue.GLUE_TASKS) + list(qa.QA_TASKS) + ["chunk", f"{tagging.CONLL_PREFIX}<name>"]


def task_family(name: str) -> str:
    """"glue", "qa" or "tagging"; a ValueError listing the known names otherwise."""
    for family, (owns, _, _) in _FAMILIES.items():
        if owns(name):
            return family
    close = difflib.get_close_matches(name, known_task_names(), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise TaskDataError(f"unknown task {name!r}{hint} (known: {', '.join(known_task_names())})")


def task_class(name: str) -> Type[Task]:
    """The class of task ``name`` (GLUE: the task's own; QA, tagging: the family's), whose
    class attributes and ``options_from_run`` apply before the task is built."""
    return _FAMILIES[task_family(name)][2](name)


def task_dir_name(name: str) -> str:
    """The folder under ``<data-dir>/finetuning_data/`` (``conll:ner:column=3`` -> ``ner``)."""
    if name.startswith(tagging.CONLL_PREFIX):
        return tagging.parse_conll_task_name(name)[0]
    return name


def get_task(name: str, finetuning_data_dir: str, tokenizer, max_seq_length: int,
             **kwargs) -> Task:
    """Builds task ``name`` reading ``<finetuning_data_dir>/<task dir>/`` (kwargs: task_id,
    debug and family options such as ``double_unordered``, ``qa_config``,
    ``label_mapping_dir``)."""
    builder: Callable = _FAMILIES[task_family(name)][1]
    return builder(name, os.path.join(finetuning_data_dir, task_dir_name(name)), tokenizer,
                   max_seq_length, **kwargs)
