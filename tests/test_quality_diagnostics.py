"""benchmarks/quality_diagnostics.py: the representation statistics behind the README's "why"."""

import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import ROOT

sys.path.insert(0, os.path.join(str(ROOT), "benchmarks"))
import quality_diagnostics  # noqa: E402


def _stats(hidden, mask):
    features = {"input_mask": tf.constant(mask)}
    return quality_diagnostics.representation_stats(
        lambda f, training=False: {"sequence_output": tf.constant(hidden)}, features)


def test_identical_cls_vectors_have_cosine_one_and_no_spread():
    rng = np.random.default_rng(0)
    hidden = rng.normal(size=(6, 5, 8))
    hidden[:, 0, :] = rng.normal(size=8)  # every sentence, the same [CLS]
    stats = _stats(hidden, np.ones((6, 5), np.int32))
    assert stats["cls_mean_cosine"] == pytest.approx(1.0)
    assert stats["cls_std_over_sentences"] == pytest.approx(0.0, abs=1e-12)
    assert stats["cls_effective_rank"] == 0.0


def test_orthogonal_cls_vectors_span_every_direction():
    hidden = np.zeros((4, 3, 8))
    hidden[:, 0, :4] = np.eye(4) * 2.0
    hidden[:, 0, 4:] = -0.5  # same offset: centred, the four stay equally spread
    stats = _stats(hidden, np.ones((4, 3), np.int32))
    # Centring 4 orthogonal vectors leaves 3 equal singular values: participation ratio 3.
    assert stats["cls_effective_rank"] == pytest.approx(3.0)
    assert stats["cls_norm"] == pytest.approx(np.sqrt(4 + 4 * 0.25))


def test_spread_over_positions_ignores_padding():
    hidden = np.zeros((2, 4, 3))
    hidden[:, :2, :] = [[1.0], [3.0]]  # real positions differ by 2 in every feature
    hidden[:, 2:, :] = 100.0           # padding, far away
    mask = np.array([[1, 1, 0, 0], [1, 1, 0, 0]], np.int32)
    assert _stats(hidden, mask)["std_over_positions"] == pytest.approx(1.0)
