"""Masking, sampling, losses and metrics of pre-training vs numpy references from spec 3."""

import math

import numpy as np
import pytest
import tensorflow as tf

from electra_tf import PretrainingConfig
from electra_tf.pretraining import (PretrainingMetrics, PretrainingObjective, mask_inputs,
                                    replace_tokens, sample_tokens, scatter_update)
from electra_tf.pretraining.random import step_seed

PAD, CLS, SEP, MASK = 0, 1, 2, 3
SPECIAL = {"cls": CLS, "sep": SEP, "mask": MASK, "pad": PAD}


def records(lengths, seq_len, vocab=50, seed=0, two_segments=True):
    """[CLS] a... [SEP] b... [SEP] padded records with the given real lengths."""
    rng = np.random.default_rng(seed)
    ids = np.zeros((len(lengths), seq_len), np.int32)
    mask = np.zeros_like(ids)
    segments = np.zeros_like(ids)
    for row, n in enumerate(lengths):
        ids[row, :n] = rng.integers(4, vocab, n)
        ids[row, 0], ids[row, n - 1] = CLS, SEP
        if two_segments and n >= 5:
            ids[row, n // 2] = SEP
            segments[row, n // 2 + 1:n] = 1
        mask[row, :n] = 1
    return {"input_ids": tf.constant(ids), "input_mask": tf.constant(mask),
            "segment_ids": tf.constant(segments)}


# ---------------------------------------------------------------------------
# scatter/gather semantics (spec 3.3)
# ---------------------------------------------------------------------------

def test_scatter_update_averages_duplicates_and_ignores_position_zero():
    sequence = tf.constant([[10, 11, 12, 13], [20, 21, 22, 23]])
    updates = tf.constant([[5, 8, 3, 99], [7, 7, 7, 7]])
    positions = tf.constant([[1, 1, 2, 0], [3, 3, 3, 0]])
    out, mask = scatter_update(sequence, updates, positions)
    # row 0: position 1 written with 5 and 8 -> floor(13 / 2) = 6 (the original's quirk)
    np.testing.assert_array_equal(out, [[10, 6, 3, 13], [20, 21, 22, 7]])
    np.testing.assert_array_equal(mask, [[0, 1, 1, 0], [0, 0, 0, 1]])
    floats, _ = scatter_update(tf.zeros((1, 3, 2)), tf.constant([[[1.0, 2.0], [2.0, 5.0]]]),
                               tf.constant([[2, 2]]))
    np.testing.assert_allclose(floats[0, 2], [1.5, 3.5])


# ---------------------------------------------------------------------------
# masking (spec 3.2)
# ---------------------------------------------------------------------------

def expected_count(num_tokens, mask_prob, n):
    product = np.float32(num_tokens) * np.float32(mask_prob)  # float32 as the original
    return int(max(1, min(n, np.round(product))))             # np.round: half to even


def test_spec_float32_ties():
    assert [expected_count(t, 0.15, 100) for t in (190, 350, 390)] == [29, 53, 59]


@pytest.mark.parametrize("seq_len,mask_prob", [(512, 0.15), (128, 0.25)])
def test_count_rule_and_candidates(seq_len, mask_prob):
    n = int((mask_prob + 0.005) * seq_len)
    lengths = [2, 3, 10, 17, 100, seq_len, 190 if seq_len > 190 else 50,
               350 if seq_len > 350 else 70, 390 if seq_len > 390 else 90]
    batch = records(lengths, seq_len)
    for step in range(5):
        out = mask_inputs(batch["input_ids"], batch["input_mask"], mask_prob=mask_prob,
                          max_predictions=n, special_ids=SPECIAL, seed=step_seed(7, step))
        weights = out["masked_lm_weights"].numpy()
        positions = out["masked_lm_positions"].numpy()
        ids = batch["input_ids"].numpy()
        for row, length in enumerate(lengths):
            k = expected_count(length, mask_prob, n)
            candidates = length - 2 - (1 if length >= 5 else 0)
            if candidates == 0:
                assert weights[row].sum() == 0
                continue
            np.testing.assert_array_equal(weights[row], [1.0] * k + [0.0] * (n - k))
            chosen = positions[row, :k]
            assert (chosen < length).all()
            assert not np.isin(ids[row, chosen], [CLS, SEP, MASK, PAD]).any()
            assert (positions[row, k:] == 0).all()
            np.testing.assert_array_equal(out["masked_lm_ids"][row, :k], ids[row, chosen])
            assert (out["masked_lm_ids"].numpy()[row, k:] == 0).all()


def test_mask_keep_split_and_no_random_tokens():
    seq_len, n = 512, 79
    batch = records([512] * 16, seq_len, vocab=3000, two_segments=False)
    ids = batch["input_ids"].numpy()
    masked_slots, total_slots = 0, 0
    position_counts = np.zeros(seq_len)
    for step in range(30):
        out = mask_inputs(batch["input_ids"], batch["input_mask"], mask_prob=0.15,
                          max_predictions=n, special_ids=SPECIAL, seed=step_seed(1, step))
        masked_ids = out["input_ids"].numpy()
        positions = out["masked_lm_positions"].numpy()
        used = out["masked_lm_weights"].numpy() > 0
        for row in range(16):
            chosen = positions[row][used[row]]
            unchanged = np.setdiff1d(np.arange(seq_len), chosen)
            np.testing.assert_array_equal(masked_ids[row, unchanged], ids[row, unchanged])
            # every chosen position is either [MASK] or its original token: no random tokens
            assert np.all((masked_ids[row, chosen] == MASK) |
                          (masked_ids[row, chosen] == ids[row, chosen]))
            values, counts = np.unique(chosen, return_counts=True)
            single = values[counts == 1]  # duplicates are [MASK]ed if any slot won the draw
            masked_slots += int((masked_ids[row, single] == MASK).sum())
            total_slots += len(single)
            np.add.at(position_counts, chosen, 1)
    assert abs(masked_slots / total_slots - 0.85) < 0.01
    # uniform over the 510 candidates (positions 1..510); never the [CLS]/[SEP] ends
    assert position_counts[0] == 0 and position_counts[511] == 0
    expected = position_counts.sum() / 510
    assert np.abs(position_counts[1:511] - expected).max() < 6 * math.sqrt(expected)


def test_duplicate_positions_are_masked_if_any_slot_won():
    """A position drawn in several slots ends up [MASK] iff at least one slot drew "mask"."""
    batch = records([6] * 64, 6, two_segments=False)  # 4 candidates, N = 4 slots
    out = mask_inputs(batch["input_ids"], batch["input_mask"], mask_prob=0.9,
                      max_predictions=4, special_ids=SPECIAL, seed=step_seed(3, 0))
    positions, masked_ids = out["masked_lm_positions"].numpy(), out["input_ids"].numpy()
    duplicates = sum(len(set(r)) < 4 for r in positions)
    assert duplicates > 30  # with 4 candidates and 4 draws most rows repeat a position
    masked_fraction = np.mean([(masked_ids[r, list(set(positions[r]))] == MASK).mean()
                               for r in range(64)])
    assert masked_fraction > 0.85  # P(masked) = 1 - 0.15^c for a position drawn c times


# ---------------------------------------------------------------------------
# sampling and fake data (spec 3.7)
# ---------------------------------------------------------------------------

def test_gumbel_sampling_follows_softmax_with_temperature():
    logits = tf.constant([[[2.0, 1.0, 0.0, -1.0]]])
    logits = tf.tile(logits, [4000, 1, 1])
    for temperature in (1.0, 2.0):
        ids = sample_tokens(logits, step_seed(5, 0), temperature).numpy().ravel()
        freq = np.bincount(ids, minlength=4) / len(ids)
        expected = np.exp(np.array([2.0, 1, 0, -1]) / temperature)
        np.testing.assert_allclose(freq, expected / expected.sum(), atol=0.025)
    ids = sample_tokens(logits, step_seed(5, 1), 1.0,
                        disallowed_ids=tf.zeros((4000, 1), tf.int32)).numpy()
    assert not (ids == 0).any()


def test_replace_tokens_labels():
    original = tf.constant([[1, 10, 11, 12, 2]])
    sampled = tf.constant([[10, 40, 30, 50]])
    positions = tf.constant([[1, 2, 2, 0]])  # slot 4 unused (position 0)
    fake, labels, replaced = replace_tokens(original, sampled, positions)
    np.testing.assert_array_equal(fake, [[1, 10, 35, 12, 2]])  # floor((40 + 30) / 2)
    np.testing.assert_array_equal(labels, [[0, 0, 1, 0, 0]])   # sample == original is real
    _, electric_labels, _ = replace_tokens(original, sampled, positions, True)
    np.testing.assert_array_equal(electric_labels, [[0, 1, 1, 0, 0]])
    np.testing.assert_array_equal(replaced, electric_labels)


# ---------------------------------------------------------------------------
# losses vs numpy (spec 3.6, 3.8, 3.9, 3.10)
# ---------------------------------------------------------------------------

def tiny_config(**hparams):
    return PretrainingConfig.from_preset("small", {
        "vocab_size": 50, "embedding_size": 16, "max_seq_length": 24,
        "generator_hidden_size": 0.5,
        "model_hparam_overrides": {"hidden_size": 32, "num_hidden_layers": 2}, **hparams})


def np_log_softmax(x):
    x = x.astype(np.float64)
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def np_softmax_loss(logits, targets, weights):
    nll = -np.take_along_axis(np_log_softmax(logits), targets[..., None], -1)[..., 0]
    return (weights * nll).sum() / (weights.sum() + 1e-6)


def np_sigmoid_loss(logits, labels, mask):
    ce = np.maximum(logits, 0) - logits * labels + np.log1p(np.exp(-np.abs(logits)))
    return (ce * mask).sum() / (mask.sum() + 1e-6)


def np_scatter(ids, updates, positions):
    out = ids.copy()
    replaced = np.zeros_like(ids)
    for row in range(ids.shape[0]):
        sums, counts = {}, {}
        for slot, p in enumerate(positions[row]):
            sums[p] = sums.get(p, 0) + updates[row, slot]
            counts[p] = counts.get(p, 0) + 1
        for p in sums:
            if p != 0:
                out[row, p] = sums[p] // counts[p]
                replaced[row, p] = 1
    return out, replaced


@pytest.mark.parametrize("hparams", [{}, {"disallow_correct": True, "temperature": 1.5}])
def test_electra_losses_match_numpy(hparams):
    objective = PretrainingObjective(tiny_config(**hparams), SPECIAL)
    batch = records([24, 20, 9], 24)
    out = objective(batch, step_seed(11, 3), training=False)
    ids = batch["input_ids"].numpy()
    mask = batch["input_mask"].numpy().astype(np.float64)
    positions = out["masked_lm_positions"].numpy()
    weights = out["masked_lm_weights"].numpy().astype(np.float64)
    targets = out["masked_lm_ids"].numpy()

    # The generator saw the masked ids; its logits at the positions give the MLM loss.
    gen_logits = objective.models.generator(
        {**batch, "input_ids": out["input_ids"], "masked_lm_positions": positions})["logits"]
    np.testing.assert_allclose(out["mlm_logits"], gen_logits, atol=1e-6)
    mlm = np_softmax_loss(gen_logits.numpy(), targets, weights)
    assert abs(float(out["mlm_loss"]) - mlm) < 1e-5

    sampled = out["sampled_ids"].numpy()
    if hparams.get("disallow_correct"):
        assert not (sampled[weights > 0] == targets[weights > 0]).any()
    fake, replaced = np_scatter(ids, sampled, positions)
    np.testing.assert_array_equal(out["fake_ids"], fake)
    labels = replaced * (fake != ids)
    np.testing.assert_array_equal(out["disc_labels"], labels)
    disc_logits = objective.models.discriminator({**batch, "input_ids": tf.constant(fake)})[
        "logits"].numpy().astype(np.float64)
    disc = np_sigmoid_loss(disc_logits, labels, mask)
    assert abs(float(out["disc_loss"]) - disc) < 1e-5
    assert abs(float(out["total_loss"]) - (mlm + 50.0 * disc)) < 5e-4


def test_electric_losses_and_correction_match_numpy():
    config = tiny_config(electric_objective=True, electra_objective=False)
    objective = PretrainingObjective(config, SPECIAL)
    batch = records([24, 20, 9], 24)
    out = objective(batch, step_seed(2, 0), training=False)
    ids = batch["input_ids"].numpy()
    mask = batch["input_mask"].numpy().astype(np.float64)
    cloze = objective.models.generator(batch)["logits"].numpy()  # reads the UN-masked input
    candidates = (mask > 0) & ~np.isin(ids, [CLS, SEP, MASK])
    cloze_loss = np_softmax_loss(cloze, ids, candidates.astype(np.float64))
    assert abs(float(out["mlm_loss"]) - cloze_loss) < 1e-5

    positions = out["masked_lm_positions"].numpy()
    np.testing.assert_allclose(out["mlm_logits"],
                               np.take_along_axis(cloze, positions[..., None], 1), atol=1e-6)
    fake, replaced = np_scatter(ids, out["sampled_ids"].numpy(), positions)
    np.testing.assert_array_equal(out["disc_labels"], replaced)  # every replacement is fake
    scores = objective.models.discriminator({**batch, "input_ids": tf.constant(fake)})[
        "logits"].numpy().astype(np.float64)
    log_q = np.take_along_axis(np_log_softmax(cloze), fake[..., None], -1)[..., 0]
    logits = scores + log_q + math.log(0.15 / 0.85)
    np.testing.assert_allclose(out["disc_logits"], logits, atol=1e-5)
    disc = np_sigmoid_loss(logits, replaced, mask)
    assert abs(float(out["disc_loss"]) - disc) < 1e-5
    assert abs(float(out["total_loss"]) - (cloze_loss + 50 * disc)) < 5e-4


def test_mlm_only_and_uniform_generator():
    out = PretrainingObjective(tiny_config(electra_objective=False), SPECIAL)(
        records([24, 20], 24), step_seed(0, 0), training=False)
    assert "disc_loss" not in out
    assert abs(float(out["total_loss"]) - float(out["mlm_loss"])) < 1e-7
    uniform = PretrainingObjective(tiny_config(uniform_generator=True), SPECIAL)
    out = uniform(records([24, 20], 24), step_seed(0, 0), training=False)
    k = float(out["masked_lm_weights"].numpy().sum())
    assert abs(float(out["mlm_loss"]) - math.log(50) * k / (k + 1e-6)) < 1e-5


def test_no_gradient_from_discriminator_into_generator():
    objective = PretrainingObjective(tiny_config(), SPECIAL)
    batch = records([24, 20], 24)
    generator_only = [v for n, v in objective.models.generator.original_variables().items()
                      if n.startswith("generator")]
    with tf.GradientTape() as tape:
        out = objective(batch, step_seed(0, 1), training=True)
    grads = tape.gradient(out["disc_loss"], generator_only)
    assert all(g is None or not np.any(g) for g in grads)
    with tf.GradientTape() as tape:
        out = objective(batch, step_seed(0, 1), training=True)
    assert all(g is not None for g in tape.gradient(out["mlm_loss"], generator_only))


def _nonzero(gradient):
    return gradient is not None and bool(np.any(tf.convert_to_tensor(gradient).numpy()))


def test_electric_gradient_isolation():
    """Spec 3.10 / 11.9: the discriminator loss reaches the cloze towers through log q only,
    and log q is a stop-gradient: disc_loss gives the towers and the cloze head exactly zero
    gradient; the cloze loss gives the discriminator's own layers zero gradient. The shared
    embedding block gets gradient from both."""
    objective = PretrainingObjective(
        tiny_config(electric_objective=True, electra_objective=False), SPECIAL)
    names = objective.models.original_variables()
    cloze_side = {n: v for n, v in names.items()
                  if n.startswith(("generator_ltr/", "generator_rtl/", "cloze_predictions/"))}
    disc_side = {n: v for n, v in names.items()
                 if n.startswith(("electra/encoder/", "electra/embeddings_project/",
                                  "discriminator_predictions/"))}
    shared = names["electra/embeddings/word_embeddings"]
    assert len(cloze_side) > 30 and len(disc_side) > 30
    assert len(cloze_side) + len(disc_side) + 5 == len(names)  # + the shared embedding block
    # A key bias never gets gradient (softmax is shift-invariant): leave it out of "non-zero".
    can_move = lambda n: not n.endswith("attention/self/key/bias")
    batch = records([24, 20, 9], 24)

    def grads(loss_name, variables):
        with tf.GradientTape() as tape:
            out = objective(batch, step_seed(6, 2), training=True)
        assert float(out["disc_loss"]) > 0 and float(out["mlm_loss"]) > 0
        return dict(zip(variables, tape.gradient(out[loss_name], list(variables.values()))))

    from_disc = grads("disc_loss", {**cloze_side, **disc_side, "shared": shared})
    leaked = [n for n in cloze_side if _nonzero(from_disc[n])]
    assert not leaked, f"disc_loss reaches the noise model: {leaked[:5]}"
    dead = [n for n in disc_side if can_move(n) and not _nonzero(from_disc[n])]
    assert not dead, f"disc_loss does not reach: {dead[:5]}"
    assert _nonzero(from_disc["shared"])

    from_cloze = grads("mlm_loss", {**cloze_side, **disc_side, "shared": shared})
    leaked = [n for n in disc_side if _nonzero(from_cloze[n])]
    assert not leaked, f"the cloze loss reaches the discriminator: {leaked[:5]}"
    dead = [n for n in cloze_side if can_move(n) and not _nonzero(from_cloze[n])]
    assert not dead, f"the cloze loss does not reach: {dead[:5]}"
    assert _nonzero(from_cloze["shared"])


# ---------------------------------------------------------------------------
# metrics (spec 3.12)
# ---------------------------------------------------------------------------

def np_auc(labels, scores, num_thresholds=200):
    """The original streaming ROC AUC: fixed thresholds, trapezoidal rule."""
    eps = 1e-7
    thresholds = ([-eps] + [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
                  + [1 + eps])
    tpr, fpr = [], []
    for t in thresholds:
        pred = scores > t
        tp, fp = (pred & (labels == 1)).sum(), (pred & (labels == 0)).sum()
        fn, tn = (~pred & (labels == 1)).sum(), (~pred & (labels == 0)).sum()
        tpr.append(tp / (tp + fn + eps))
        fpr.append(fp / (fp + tn + eps))
    tpr, fpr = np.array(tpr), np.array(fpr)
    return float(np.sum((fpr[:-1] - fpr[1:]) * (tpr[:-1] + tpr[1:]) / 2))


def test_metrics_match_numpy():
    objective = PretrainingObjective(tiny_config(), SPECIAL)
    metrics = PretrainingMetrics(rtd=True, disc_weight=50.0)
    collected = []
    for step in range(3):
        batch = records([24, 20, 9, 15], 24, seed=step)
        out = objective(batch, step_seed(4, step), training=False)
        metrics.update(out, batch["input_mask"])
        collected.append((batch, {k: v.numpy() for k, v in out.items()}))
    result = metrics.result()
    w = np.concatenate([o["masked_lm_weights"].ravel() for _, o in collected])
    preds = np.concatenate([o["mlm_logits"].argmax(-1).ravel() for _, o in collected])
    ids = np.concatenate([o["masked_lm_ids"].ravel() for _, o in collected])
    sampled = np.concatenate([o["sampled_ids"].ravel() for _, o in collected])
    assert abs(result["masked_lm_accuracy"] - (w * (preds == ids)).sum() / w.sum()) < 1e-6
    assert abs(result["sampled_masked_lm_accuracy"] - (w * (sampled == ids)).sum() / w.sum()) < 1e-6
    mask = np.concatenate([b["input_mask"].numpy().ravel() for b, _ in collected]).astype(float)
    labels = np.concatenate([o["disc_labels"].ravel() for _, o in collected]).astype(float)
    logits = np.concatenate([o["disc_logits"].ravel() for _, o in collected])
    disc_preds = (logits > 0).astype(float)
    correct = (disc_preds == labels).astype(float)
    assert abs(result["disc_accuracy"] - (correct * mask).sum() / mask.sum()) < 1e-6
    if (disc_preds * mask).sum():
        assert abs(result["disc_precision"] -
                   (correct * disc_preds * mask).sum() / (disc_preds * mask).sum()) < 1e-6
    assert abs(result["disc_recall"] -
               (correct * labels * mask).sum() / (labels * mask).sum()) < 1e-6
    per_example = np.concatenate([o["disc_per_example_loss"] for _, o in collected])
    assert abs(result["disc_loss"] - per_example.mean()) < 1e-6
    probs = 1 / (1 + np.exp(-logits.astype(np.float64)))
    assert abs(result["disc_auc"] - np_auc(labels * mask, probs * mask)) < 1e-3
    assert abs(result["loss"] - np.mean([o["total_loss"] for _, o in collected])) < 1e-5


def _hand_batch(rng, lengths, seq_len=12, slots=4, vocab=6):
    """Objective outputs built by hand: padding slots (weight 0, id 0) whose logits favour 0,
    padding positions (label 0) with large positive discriminator logits, so that any metric
    that forgets its weights moves."""
    b = len(lengths)
    mask = (np.arange(seq_len)[None] < np.array(lengths)[:, None]).astype(np.int32)
    n_real_slots = [min(slots, max(1, n // 3)) for n in lengths]
    weights = (np.arange(slots)[None] < np.array(n_real_slots)[:, None]).astype(np.float32)
    ids = (rng.integers(1, vocab, (b, slots)) * weights).astype(np.int32)
    mlm_logits = rng.normal(size=(b, slots, vocab)).astype(np.float32)
    mlm_logits[..., 0] += np.where(weights == 0, 10.0, 0.0)  # padding slots "predict" id 0
    sampled = np.where(rng.random((b, slots)) < 0.5, ids, (ids + 1) % vocab).astype(np.int32)
    labels = (rng.random((b, seq_len)) < 0.3).astype(np.int32) * mask
    logits = (rng.normal(size=(b, seq_len)) * 2.0 + labels).astype(np.float32)
    logits = np.where(mask == 1, logits, 3.0).astype(np.float32)
    per_example = rng.random(b).astype(np.float32) * (1 + np.arange(b))
    out = {"masked_lm_weights": weights, "masked_lm_ids": ids, "mlm_logits": mlm_logits,
           "sampled_ids": sampled, "disc_labels": labels, "disc_logits": logits,
           "disc_per_example_loss": per_example,
           "total_loss": np.float32(rng.random() * 10)}
    return {k: tf.constant(v) for k, v in out.items()}, tf.constant(mask)


def test_metrics_hand_built_batches_match_the_spec_formulas():
    """Spec 3.12 on two hand-built batches of different sizes (streaming = pooled over all
    rows, not a mean of batch means). Each expected value is checked to differ from the
    value a plausible mistake would give, so the comparison has teeth."""
    rng = np.random.default_rng(21)
    batches = [_hand_batch(rng, [12, 9, 5, 11]), _hand_batch(rng, [7, 12])]
    metrics = PretrainingMetrics(rtd=True, disc_weight=50.0)
    for out, mask in batches:
        metrics.update(out, mask)
    result = metrics.result()

    cat = lambda key: np.concatenate([o[key].numpy().reshape(-1) for o, _ in batches])
    w, ids = cat("masked_lm_weights").astype(np.float64), cat("masked_lm_ids")
    mlm_logits = np.concatenate([o["mlm_logits"].numpy().reshape(-1, 6) for o, _ in batches])
    hit = (mlm_logits.argmax(-1) == ids).astype(np.float64)
    expected = {"masked_lm_accuracy": (w * hit).sum() / w.sum()}
    nll = -np_log_softmax(mlm_logits)[np.arange(len(ids)), ids]
    expected["masked_lm_loss"] = (w * nll).sum() / w.sum()
    expected["sampled_masked_lm_accuracy"] = (w * (cat("sampled_ids") == ids)).sum() / w.sum()
    mask = np.concatenate([m.numpy().reshape(-1) for _, m in batches]).astype(np.float64)
    labels, logits = cat("disc_labels").astype(np.float64), cat("disc_logits").astype(np.float64)
    preds = (logits > 0).astype(np.float64)
    correct = (preds == labels).astype(np.float64)
    expected["disc_accuracy"] = (correct * mask).sum() / mask.sum()
    expected["disc_precision"] = (correct * preds * mask).sum() / (preds * mask).sum()
    expected["disc_recall"] = (correct * labels * mask).sum() / (labels * mask).sum()
    expected["disc_loss"] = cat("disc_per_example_loss").mean()  # mean over examples
    expected["loss"] = np.mean([float(o["total_loss"]) for o, _ in batches])
    probs = 1.0 / (1.0 + np.exp(-logits))
    # [QUIRK] padding enters as label-0 examples with score 0 (probs * input_mask).
    expected["disc_auc"] = np_auc(labels * mask, probs * mask)
    assert sorted(result) == sorted(expected)
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, abs=2e-6), key

    # The plausible mistakes give other numbers (so the checks above can fail).
    real = mask > 0
    wrong = {
        "masked_lm_accuracy": [hit.mean()],
        "sampled_masked_lm_accuracy": [(cat("sampled_ids") == ids).mean()],
        "masked_lm_loss": [nll.mean()],
        "disc_accuracy": [correct.mean()],
        "disc_precision": [(correct * preds).sum() / preds.sum(),
                           expected["disc_recall"]],  # precision <-> recall swapped
        "disc_loss": [np.mean([o["disc_per_example_loss"].numpy().mean() for o, _ in batches])],
        "disc_auc": [np_auc(labels[real], probs[real]),      # padding dropped
                     np_auc(labels * mask, probs)],          # padding with its own score
    }
    for key, values in wrong.items():
        for value in values:
            assert abs(value - expected[key]) > 0.01, (key, value, expected[key])
