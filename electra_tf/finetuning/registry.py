"""Task names -> task objects, each built once with its family's settings.

A family is a package (``glue/``, ``qa/``, ``tagging/``) with its tasks, its settings (the
family's section of the fine-tuning config) and a builder. Adding a task: write its class
in the package of its family (or a new family implementing ``task.Task``) and add it to the
family's own table (e.g. ``glue.GLUE_TASKS``), or a family to ``_FAMILIES`` below.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from typing import Callable, Dict, List, Type

from electra_tf.finetuning import glue, qa, tagging
from electra_tf.finetuning.settings import FamilySettings
from electra_tf.finetuning.task import Task, TaskDataError


@dataclasses.dataclass(frozen=True)
class _Family:
    owns: Callable[[str], bool]           # is a task name this family's?
    build: Callable[..., Task]            # (name, data_dir, tokenizer, L, **keywords)
    task_class: Callable[[str], Type[Task]]
    settings: Type[FamilySettings]        # read from the run's config section
    # The constructor keywords a run's directories and sources give its tasks (the
    # driver's FinetuneOptions -> keywords).
    run_keywords: Callable[[object], dict]


_FAMILIES: Dict[str, _Family] = {
    "glue": _Family(lambda name: name in glue.GLUE_TASKS, glue.get_glue_task,
                    lambda name: glue.GLUE_TASKS[name], glue.GlueSettings,
                    lambda run: {"data_source": run.data_source,
                                 "tfds_data_dir": run.tfds_data_dir,
                                 "check_columns": run.check_glue_columns}),
    # QA writes its predictions beside the results.
    "qa": _Family(lambda name: name in qa.QA_TASKS, qa.get_qa_task, lambda name: qa.QATask,
                  qa.QASettings, lambda run: {"results_dir": run.results_dir}),
    # The tag mapping is cached beside the features, as the original does.
    "tagging": _Family(tagging.is_tagging_task_name, tagging.get_tagging_task,
                       lambda name: tagging.TaggingTask, tagging.TaggingSettings,
                       lambda run: {"label_mapping_dir": run.preprocessed_dir}),
}


def known_task_names() -> List[str]:
    return sorted(glue.GLUE_TASKS) + list(qa.QA_TASKS) + ["chunk", f"{tagging.CONLL_PREFIX}<name>"]


def task_family(name: str) -> str:
    """"glue", "qa" or "tagging"; a ValueError listing the known names otherwise."""
    for family, entry in _FAMILIES.items():
        if entry.owns(name):
            return family
    close = difflib.get_close_matches(name, known_task_names(), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise TaskDataError(f"unknown task {name!r}{hint} (known: {', '.join(known_task_names())})")


def task_class(name: str) -> Type[Task]:
    """The class of task ``name`` (GLUE: the task's own; QA, tagging: the family's), whose
    class attributes (``export_kind``...) apply before the task is built."""
    return _FAMILIES[task_family(name)].task_class(name)


def task_dir_name(name: str) -> str:
    """The folder under ``<data-dir>/finetuning_data/`` (``conll:ner:column=3`` -> ``ner``)."""
    if name.startswith(tagging.CONLL_PREFIX):
        return tagging.parse_conll_task_name(name)[0]
    return name


def get_task(name: str, finetuning_data_dir: str, tokenizer, max_seq_length: int,
             **kwargs) -> Task:
    """Builds task ``name`` reading ``<finetuning_data_dir>/<task dir>/`` (kwargs: task_id,
    debug, the family's ``settings`` (default: its defaults) and keywords such as
    ``label_mapping_dir``)."""
    return _FAMILIES[task_family(name)].build(
        name, os.path.join(finetuning_data_dir, task_dir_name(name)), tokenizer,
        max_seq_length, **kwargs)


def build_tasks(config, run, tokenizer) -> List[Task]:
    """The tasks of a run, in ``task_id`` order, each built once with what it needs.

    Args:
      config: the run's FinetuningConfig: its tasks, L, debug and each family's settings
        (its section).
      run: the driver's FinetuneOptions: ``data_dir`` (holding ``finetuning_data/``), the
        directories tasks write to and GLUE's data source.
      tokenizer: shared by every task.
    """
    tasks = []
    for index, name in enumerate(config.task_names):
        family = task_family(name)
        if run.data_source != "tsv" and family != "glue":
            raise ValueError(f"--data_source={run.data_source} is available for GLUE tasks "
                             f"only, not {name!r}")
        entry = _FAMILIES[family]
        tasks.append(get_task(name, os.path.join(run.data_dir, "finetuning_data"), tokenizer,
                              config.max_seq_length, task_id=index, debug=config.debug,
                              settings=entry.settings.from_config(config),
                              **entry.run_keywords(run)))
    return tasks
