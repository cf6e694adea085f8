"""Tags and spans of the tagging tasks (spec 6.6): splitting a tag, the two span rules, and
BIOES re-encoding."""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

# A span: (first word, last word (inclusive), type).
Span = Tuple[int, int, str]

SPAN_RULES = ("electra", "typed")


def split_tag(tag: str, aliases: bool = False) -> Tuple[str, Optional[str]]:
    """``"B-NP"`` -> ``("B", "NP")``; ``"O"`` -> ``("O", None)``.

    The prefix is the part before the first ``-`` (a type may contain ``-``; the original
    could not read such tags at all). Raises ValueError unless the prefix is one of B, I, E,
    S -- plus L and U (BILOU, read as E and S) when ``aliases`` -- and the type is non-empty.
    """
    if tag == "O":
        return "O", None
    prefix, sep, kind = tag.partition("-")
    if aliases:
        prefix = {"L": "E", "U": "S"}.get(prefix, prefix)
    if not sep or not kind or prefix not in ("B", "I", "E", "S"):
        allowed = "B, I, E, S, L, U" if aliases else "B, I, E, S"
        raise ValueError(f"malformed tag {tag!r}: expected 'O' or '<P>-<type>' with P in "
                         f"{allowed}")
    return prefix, kind


def spans_electra(tags: Sequence[str]) -> List[Span]:
    """Spans of a tag sequence by the original's rule (spec 6.6), used by ``chunk``.

    A span closes when a B-, S- or O tag follows a non-O tag (an E- tag does not close it by
    itself); a span opens at B-/S- or at any non-O tag after O; its type is the type of the
    last tag inside it (so ``B-NP I-VP`` is one VP span). An empty sequence has no spans.

    Args:
      tags: [n] tag strings.
    Returns:
      spans in order of their start.
    """
    spans: List[Span] = []
    last = "O"
    last_type: Optional[str] = None
    start = -1
    for i, tag in enumerate(tags):
        prefix, kind = split_tag(tag)
        if prefix in ("B", "S", "O") and last != "O":
            spans.append((start, i - 1, last_type))
        if prefix in ("B", "S") or last == "O":
            start = i
        last, last_type = tag, kind
    if tags and last != "O":
        spans.append((start, len(tags) - 1, last_type))
    return spans


def spans_typed(tags: Sequence[str]) -> List[Span]:
    """Spans by a type-aware (conlleval-style) rule, the default of ``conll:`` tasks.

    A span ends after an E- or S- tag, before a B-, S- or O tag, and before a tag of another
    type; every other non-O tag continues the open span, and a non-O tag with no open span
    opens one. This reads IOB1 (``I-PER I-PER B-PER I-LOC``: PER, PER, LOC), IOB2 and
    BIOES/BILOU alike (L/U are read as E/S).

    Args:
      tags: [n] tag strings.
    Returns:
      spans in order of their start.
    """
    spans: List[Span] = []
    start = -1
    open_type: Optional[str] = None
    last_prefix = "O"
    for i, tag in enumerate(tags):
        prefix, kind = split_tag(tag, aliases=True)
        if open_type is not None and (last_prefix in ("E", "S") or prefix in ("B", "S", "O")
                                      or kind != open_type):
            spans.append((start, i - 1, open_type))
            open_type = None
        if prefix != "O" and open_type is None:
            start, open_type = i, kind
        last_prefix = prefix
    if open_type is not None:
        spans.append((start, len(tags) - 1, open_type))
    return spans


_SPAN_FUNCTIONS: Dict[str, Callable[[Sequence[str]], List[Span]]] = {
    "electra": spans_electra, "typed": spans_typed}


def get_span_function(rule: str) -> Callable[[Sequence[str]], List[Span]]:
    """``"electra"`` -> :func:`spans_electra`, ``"typed"`` -> :func:`spans_typed`."""
    if rule not in _SPAN_FUNCTIONS:
        raise ValueError(f"unknown span rule {rule!r}; known: {list(SPAN_RULES)}")
    return _SPAN_FUNCTIONS[rule]


def spans_to_bioes(spans: Sequence[Span], length: int) -> List[str]:
    """BIOES tags [length] of non-overlapping spans: ``S-t`` for a one-word span, else
    ``B-t I-t ... E-t``; ``O`` elsewhere."""
    tags = ["O"] * length
    for start, end, kind in spans:
        for i in range(start, end + 1):
            tags[i] = "I-" + kind
        tags[end] = "E-" + kind
        tags[start] = "B-" + kind
        if start == end:
            tags[start] = "S-" + kind
    return tags


def to_bioes(tags: Sequence[str], rule: str = "electra") -> List[str]:
    """Re-encodes a tag sequence [n] as BIOES via its spans under ``rule``."""
    return spans_to_bioes(get_span_function(rule)(tags), len(tags))
