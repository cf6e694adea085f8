"""Pseudo-log-likelihood scoring (electra_tf.scoring): Electric one-pass vs brute force, MLM."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from test_detect import ROOT, VOCAB, direct_logits, write_checkpoint

from electra_tf import detection, scoring, tokenization

TEXTS = ["The quick brown fox jumps over the lazy dog",
         "a cat sat on the mat!",
         "it was rainy",
         "unbelievable"]
ELECTRIC = {"electric_objective": True, "electra_objective": False}
MLM_ONLY = {"electric_objective": False, "electra_objective": False}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("scoring")
    return {name: (root / name, write_checkpoint(root / name, seed=seed, **objective))
            for name, seed, objective in (("electric", 1, ELECTRIC), ("electra", 2, {}),
                                          ("mlm_only", 3, MLM_ONLY))}


def _ids(tok, text):
    return [tok.cls_id] + tok.encode(text) + [tok.sep_id]


def test_electric_one_pass_equals_the_per_position_computation(checkpoints):
    directory, models = checkpoints["electric"]
    fast = scoring.electric_scores(str(directory), TEXTS, batch_size=3)  # padded batches
    slow = scoring.electric_scores_brute_force(str(directory), TEXTS)
    tok = tokenization.FullTokenizer(str(VOCAB))
    for text, f, s in zip(TEXTS, fast, slow):
        assert f.tokens == s.tokens == tok.tokenize(text) and f.method == "electric"
        np.testing.assert_allclose(f.token_scores, s.token_scores, atol=1e-5)
        assert abs(f.score - s.score) < 1e-5
        assert abs(f.score - sum(f.token_scores)) < 1e-9
        # sum over word-pieces of -s_t, where s is the discriminator head output
        energies = direct_logits(models.discriminator, _ids(tok, text))[1:-1]
        np.testing.assert_allclose(f.token_scores, -energies, atol=1e-5)
    assert len({round(f.score, 4) for f in fast}) == len(TEXTS)  # not a constant
    # word-pieces count, [CLS]/[SEP] do not; an empty text scores 0
    empty = scoring.electric_scores(str(directory), [""])[0]
    assert empty.tokens == [] and empty.score == 0.0


def _loop_pll(generator, tok, text):
    """Masks each word-piece in turn; log softmax at the true id from all-position logits."""
    ids = _ids(tok, text)
    total, per_token = 0.0, []
    for p in range(1, len(ids) - 1):
        masked = np.asarray([ids], np.int32)
        masked[0, p] = tok.mask_id
        out = generator({"input_ids": masked, "input_mask": np.ones_like(masked),
                         "segment_ids": np.zeros_like(masked)}, training=False)
        logits = np.asarray(out["logits"], np.float64)[0, p]
        log_probs = logits - logits.max() - np.log(np.exp(logits - logits.max()).sum())
        per_token.append(log_probs[ids[p]])
        total += log_probs[ids[p]]
    return total, per_token


@pytest.mark.parametrize("name", ["electra", "mlm_only"])
def test_mlm_pseudo_log_likelihood_equals_a_loop_recomputation(checkpoints, name):
    directory, models = checkpoints[name]
    tok = tokenization.FullTokenizer(str(VOCAB))
    results = scoring.mlm_pseudo_log_likelihood(str(directory), TEXTS, batch_size=5)
    for text, r in zip(TEXTS, results):
        total, per_token = _loop_pll(models.generator, tok, text)
        assert r.method == "mlm" and r.tokens == tok.tokenize(text)
        np.testing.assert_allclose(r.token_scores, per_token, atol=1e-5)
        assert abs(r.score - total) < 1e-4
        assert all(v < 0 for v in r.token_scores)


def test_wrong_checkpoint_kind_is_a_clear_error(checkpoints):
    with pytest.raises(ValueError, match="is not an Electric model"):
        scoring.electric_scores(str(checkpoints["electra"][0]), ["a cat"])
    with pytest.raises(ValueError, match="not a masked LM: score it with method 'electric'"):
        scoring.mlm_pseudo_log_likelihood(str(checkpoints["electric"][0]), ["a cat"])
    with pytest.raises(detection.InputError, match="single texts"):
        scoring.electric_scores(str(checkpoints["electric"][0]), [("a", "b")])


def test_rerank_groups_and_sorts():
    def make(text, score):
        return scoring.SentenceScore(text, score, ["x"] * len(text), [], 0, "t")
    scores = [make("a", -3.0), make("bb", -1.0), make("c", -0.5), make("dddd", -1.6)]
    ranked = scoring.rerank(["q2", "q1", "q2", "q2"], scores)
    assert [(g, [i for i, _ in items]) for g, items in ranked] == [("q2", [2, 3, 0]),
                                                                  ("q1", [1])]
    ranked = scoring.rerank(["q2", "q1", "q2", "q2"], scores, length_normalize=True)
    assert [i for i, _ in ranked[0][1]] == [3, 2, 0]  # -0.4 per word-piece first


def test_cli_rerank_and_errors(checkpoints, tmp_path, capsys):
    directory = str(checkpoints["electric"][0])
    lines = ["q1\tthe dog is big", "q2\ta cat sat on the mat", "q1\tdog the big is",
             "q2\tthe cat", "q1\tthe big dog"]
    nbest = tmp_path / "nbest.tsv"
    nbest.write_text("\n".join(lines) + "\n")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "electra_tf.scoring", "--checkpoint", directory, "--rerank",
         "--json", "--input_file", str(nbest), "--batch_size", "2"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    api = {r.text: r.score for r in
           scoring.electric_scores(directory, [line.split("\t")[1] for line in lines])}
    assert [r["id"] for r in records] == ["q1"] * 3 + ["q2"] * 2
    for gid in ("q1", "q2"):
        group = [r for r in records if r["id"] == gid]
        assert [r["rank"] for r in group] == list(range(1, len(group) + 1))
        assert [r["score"] for r in group] == sorted((r["score"] for r in group), reverse=True)
        assert sorted(r["text"] for r in group) == sorted(
            line.split("\t")[1] for line in lines if line.startswith(gid))
    for r in records:
        assert abs(r["score"] - api[r["text"]]) < 1e-5

    # table output with per-token scores, then one-line errors
    assert scoring.main(["--checkpoint", directory, "--per_token", "a cat sat"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["score", "tokens", "text"]
    assert out[1].split()[1:] == ["3", "a", "cat", "sat"]
    assert [line.split()[1] for line in out[2:]] == ["a", "cat", "sat"]
    total = float(out[1].split()[0])
    assert abs(total - sum(float(line.split()[0]) for line in out[2:])) < 2e-4

    bad = tmp_path / "bad.tsv"
    bad.write_text("q1\tfine\nno tab here\n")
    for argv, expected in (
            (["--checkpoint", directory, "--rerank", "--input_file", str(bad)],
             "bad.tsv:2: --rerank expects 'id<TAB>sentence' lines"),
            (["--checkpoint", str(checkpoints["electra"][0]), "a cat"],
             "is not an Electric model"),
            (["--checkpoint", directory, "--method", "mlm", "a cat"], "not a masked LM"),
            (["--checkpoint", directory, "--method=pll", "a cat"],
             "--method=pll: value should be one of <electric|mlm>")):
        assert scoring.main(argv) != 0
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("error: "), err
        assert expected in err, err
