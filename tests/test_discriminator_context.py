"""benchmarks/discriminator_context.py: the word-order test's pieces."""

import os
import random
import sys

import numpy as np
import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(str(ROOT), "benchmarks"))
import discriminator_context as dc  # noqa: E402


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rank_auc_is_the_pairwise_probability_with_ties_halved(seed):
    rng = np.random.default_rng(seed)
    negatives = rng.integers(0, 6, size=40).astype(float)  # many ties on purpose
    positives = rng.integers(1, 7, size=30).astype(float)
    pairs = [(p > n) + 0.5 * (p == n) for p in positives for n in negatives]
    assert dc.rank_auc(negatives, positives) == pytest.approx(np.mean(pairs), abs=1e-12)
    assert dc.rank_auc(negatives, negatives) == pytest.approx(0.5)


def test_paragraphs_skip_markup_and_short_lines_and_shuffling_keeps_the_words(tmp_path):
    (tmp_path / "wiki_00").write_text(
        '<doc id="1" title="A">\nA\n' + " ".join(f"w{i}" for i in range(50)) + "\n"
        "too short a line\n" + " ".join(f"v{i}" for i in range(45)) + "\n</doc>\n")
    texts = dc.heldout_paragraphs(str(tmp_path), 2, 40)
    assert texts == [" ".join(f"w{i}" for i in range(40)), " ".join(f"v{i}" for i in range(40))]
    mixed = dc.shuffled(texts[0], random.Random(0))
    assert mixed != texts[0] and sorted(mixed.split()) == sorted(texts[0].split())
    with pytest.raises(SystemExit, match="has only 2 paragraphs of 40"):
        dc.heldout_paragraphs(str(tmp_path), 3, 40)
