"""benchmarks/profile_step.py: the trace of the driver's step is read and attributed."""

import json
import os
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(str(ROOT), "benchmarks"))
import profile_step  # noqa: E402

TINY = json.dumps({"model_hparam_overrides": {"num_hidden_layers": 2, "hidden_size": 64,
                                              "intermediate_size": 128,
                                              "num_attention_heads": 2}})


@pytest.mark.parametrize("scope, part", [
    ("StatefulPartitionedCall/gradient_tape/discriminator/electra/layer_3/output_dense/"
     "Tensordot/MatMul/MatMul", "feed-forward (intermediate + GELU, output)"),
    ("StatefulPartitionedCall/discriminator/electra/layer_0/query/Tensordot/MatMul",
     "attention projections (Q, K, V, output)"),
    ("StatefulPartitionedCall/discriminator/electra/layer_5/attention_probs_dropout/"
     "stateless_random_uniform", "attention dropout"),
    ("StatefulPartitionedCall/generator/generator/layer_1/MatMul", "attention scores, "
     "softmax, context"),
    ("StatefulPartitionedCall/sampling/Log", "Gumbel sampling + replacement"),
    ("StatefulPartitionedCall/optimizer_update/AdamWeightDecay/Sqrt",
     "optimizer update (incl. gradient clipping)"),
    ("StatefulPartitionedCall/somewhere_else/Add", "other"),
])
def test_op_scopes_map_to_parts_of_the_step(scope, part):
    assert profile_step.part_of(scope) == part


def test_a_traced_tiny_step_is_summed_by_part_and_op_type(tmp_path, capsys):
    out_json = tmp_path / "profile.jsonl"
    assert profile_step.main(["--batch_size=2", "--seq_length=32", "--warmup=1", "--steps=1",
                              "--mixed_precision=float32", f"--hparams={TINY}",
                              f"--json={out_json}"]) == 0
    row = json.loads(out_json.read_text().splitlines()[-1])
    assert row["benchmark"] == "profile_step" and row["op_s_per_step"] > 0
    for shares in (row["share_by_part"], row["share_by_type"]):
        assert sum(shares.values()) == pytest.approx(1.0, abs=1e-6)
        assert all(share >= 0 for share in shares.values())
    # The step's real work was found: matmuls by type, and the named parts of the step.
    assert row["share_by_type"].get("MatMul", 0) + row["share_by_type"].get(
        "BatchMatMulV2", 0) > 0.05
    for part in ("feed-forward (intermediate + GELU, output)", "optimizer update (incl. "
                 "gradient clipping)", "Gumbel sampling + replacement", "masking",
                 "generator MLM loss (softmax over the vocabulary)"):
        assert row["share_by_part"].get(part, 0) > 0, part
    # The wrappers that contain the ops are not counted on top of them.
    assert "Process" not in row["share_by_type"] and "Run" not in row["share_by_type"]
    assert row["share_by_part"].get("other", 0) < 0.5
    printed = capsys.readouterr().out
    assert "by part of the step:" in printed and "top 15 op types:" in printed
