"""benchmarks/precision_parity.py: its reading of progress lines and its verdict arithmetic."""

import os
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(str(ROOT), "benchmarks"))
import precision_parity as pp  # noqa: E402

LOG = """quick start: ...
step 10/30 (33.3%) | 1.20 steps/s, 19.2 examples/s | elapsed 8.3s, ETA 16.7s | loss total=30.5000 mlm=10.0000 disc=0.4100 | mlm_acc=0.010
warning: something else
step 20/30 (66.7%) | 1.30 steps/s, 20.8 examples/s | elapsed 16.0s, ETA 7.7s | loss total=28.0000 mlm=9.0000 disc=0.3800
step 30/30 (100.0%) | 1.30 steps/s, 20.8 examples/s | elapsed 23.7s, ETA 0.0s | loss total=26.0000 mlm=8.0000 disc=0.3600 | mlm_acc=0.050
"""


def test_progress_lines_give_the_loss_curves():
    curve = pp.parse_curve(LOG)
    assert curve["total"] == [(10, 30.5), (20, 28.0), (30, 26.0)]
    assert curve["mlm"] == [(10, 10.0), (20, 9.0), (30, 8.0)]
    assert curve["disc"] == [(10, 0.41), (20, 0.38), (30, 0.36)]


def test_distance_is_the_mean_gap_of_smoothed_curves_over_the_second_half():
    a = [(s, float(s)) for s in range(1, 9)]
    b = [(s, float(s) + (0.0 if s <= 4 else 2.0)) for s in range(1, 9)]
    # window 1: no smoothing; second half = steps 5..8, gap 2 everywhere.
    assert pp.distance(a, b, window=1) == pytest.approx(2.0)
    # window 2: step 5 averages a gap of 0 (step 4) and 2 (step 5) -> 1; steps 6..8 -> 2.
    assert pp.distance(a, b, window=2) == pytest.approx((1 + 2 + 2 + 2) / 4)
    # Only common steps count.
    assert pp.distance(a, b[::2], window=1) == pytest.approx(2.0)
