"""Tagging task names (spec 6.6): ``chunk`` and ``conll:<name>[:key=value,...]``, and the
options such a name may carry."""

from __future__ import annotations

import re
from typing import Any, Dict, Tuple

from electra_tf.finetuning.tagging.spans import SPAN_RULES

CHUNK = "chunk"
CONLL_PREFIX = "conll:"
# A tagging task's name: its feature prefix and its head's variable scope.
TASK_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# What a conll: name may set (the fields of TaggingSettings), with their types.
CONLL_OPTIONS = {"column": int, "lower_case": bool, "span_rule": str,
                 "keep_last_unterminated": bool}


def _parse_bool(key: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    raise ValueError(f"option {key}={value!r} is not a boolean")


def parse_conll_task_name(spec: str) -> Tuple[str, Dict[str, Any]]:
    """``"conll:<name>[:key=value,...]"`` -> ``(name, options)``.

    E.g. ``conll:ner`` -> ``("ner", {})``; ``conll:ner:column=3,lower_case=false`` ->
    ``("ner", {"column": 3, "lower_case": False})``. The task name (not the spec) names the
    data directory, the features and the head.
    """
    if not spec.startswith(CONLL_PREFIX):
        raise ValueError(f"{spec!r} is not a '{CONLL_PREFIX}<name>' task")
    name, _, opts = spec[len(CONLL_PREFIX):].partition(":")
    if not TASK_NAME_RE.match(name):
        raise ValueError(f"{spec!r}: task name {name!r} must be letters, digits and '_'")
    options: Dict[str, Any] = {}
    for item in filter(None, opts.split(",")):
        key, eq, value = item.partition("=")
        if not eq or key not in CONLL_OPTIONS:
            raise ValueError(f"{spec!r}: bad option {item!r}; known keys: "
                             f"{sorted(CONLL_OPTIONS)}")
        kind = CONLL_OPTIONS[key]
        try:
            options[key] = _parse_bool(key, value) if kind is bool else kind(value)
        except ValueError:
            raise ValueError(f"{spec!r}: option {key}={value!r} is not a valid "
                             f"{kind.__name__}") from None
    if options.get("span_rule", "typed") not in SPAN_RULES:
        raise ValueError(f"{spec!r}: span_rule must be one of {list(SPAN_RULES)}")
    return name, options


def is_tagging_task_name(spec: str) -> bool:
    return spec == CHUNK or spec.startswith(CONLL_PREFIX)
