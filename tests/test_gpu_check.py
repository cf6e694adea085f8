"""benchmarks/gpu_check.py: the GPU check a user runs, exercised on the CPU with tiny shapes."""

import os
import re
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(str(ROOT), "benchmarks"))
import gpu_check  # noqa: E402
from pretraining_throughput import step_flops  # noqa: E402


@pytest.mark.parametrize("name,precision,expected", [
    ("NVIDIA A100-SXM4-80GB", "bfloat16", 312.0),
    ("NVIDIA H100 80GB HBM3", "bfloat16", 989.0),
    ("Tesla V100-SXM2-16GB", "bfloat16", None),  # no bfloat16 units: no peak to claim
    ("Tesla V100-SXM2-16GB", "float16", 125.0),
    ("NVIDIA L4", "bfloat16", 121.0),
    ("Some Future GPU", "bfloat16", None),
])
def test_nominal_peaks_by_device_name(name, precision, expected):
    assert gpu_check.nominal_peak(name, precision) == expected


def test_tiny_run_reports_each_size_with_consistent_figures(capsys):
    assert gpu_check.main(["--tiny", "--no-xla", "--warmup=1", "--precision=bfloat16"]) == 0
    out = capsys.readouterr().out
    assert "no GPU visible" in out
    rows = re.findall(r"ELECTRA-(\w+) B=(\d+) L=(\d+).*\n\s+([\d.]+) s/step \((\d+) steps\), "
                      r"([\d.]+) steps/s, (\d+) tokens/s, ([\d.]+) TFLOP/s, MFU ([\d.]+)%", out)
    assert [r[0] for r in rows] == ["small", "base"]
    peak = float(re.search(r"measured ([\d.]+) TFLOP/s", out).group(1))
    from electra_tf.config import PretrainingConfig
    for size, batch, seq, step_s, steps, steps_per_s, tokens, tflops, mfu in rows:
        batch, seq, step_s = int(batch), int(seq), float(step_s)
        assert int(steps) == 2 and step_s > 0
        assert float(steps_per_s) == pytest.approx(1 / step_s, rel=0.01)
        assert int(tokens) == pytest.approx(batch * seq / step_s, rel=0.01)
        # MFU from an independent FLOP count of the same shapes.
        config = PretrainingConfig.from_preset(size, gpu_check.TINY_HPARAMS,
                                               max_seq_length=seq, train_batch_size=batch)
        flops = step_flops(config, batch)["train"]
        assert float(mfu) / 100 == pytest.approx(flops / step_s / 1e12 / peak, rel=0.05, abs=2e-3)
    assert re.search(r"goal: ELECTRA-Base step at >= 50% MFU: (met|NOT met)", out)
