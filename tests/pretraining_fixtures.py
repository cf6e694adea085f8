"""Small pre-training fixtures shared by the driver tests."""

import numpy as np
import tensorflow as tf

from electra_tf.config import PretrainingConfig

SEQ_LEN = 32


def write_learnable_records(directory, num_files=2, per_file=160, seq_len=SEQ_LEN, seed=0,
                            full_length=False):
    """TFRecords of [CLS] a a+1 a+2 ... [SEP] runs: easy to learn, so losses must fall."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for shard in range(num_files):
        path = directory / f"pretrain_data.tfrecord-{shard}-of-{num_files}"
        with tf.io.TFRecordWriter(str(path)) as writer:
            for _ in range(per_file):
                n = seq_len if full_length else int(rng.integers(12, seq_len + 1))
                ids = np.zeros(seq_len, np.int64)
                start = int(rng.integers(1000, 1300))
                ids[:n] = start + np.arange(n)
                ids[0], ids[n - 1] = 101, 102
                mask = (np.arange(seq_len) < n).astype(np.int64)
                segments = np.zeros(seq_len, np.int64)
                feature = {k: tf.train.Feature(int64_list=tf.train.Int64List(value=v))
                           for k, v in (("input_ids", ids), ("input_mask", mask),
                                        ("segment_ids", segments))}
                writer.write(tf.train.Example(
                    features=tf.train.Features(feature=feature)).SerializeToString())
    return str(directory / "pretrain_data.tfrecord*")


def tiny_hparams(dropout=True, **extra):
    overrides = {"hidden_size": 32, "num_hidden_layers": 2}
    if not dropout:
        overrides.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return {"max_seq_length": SEQ_LEN, "train_batch_size": 8, "eval_batch_size": 8,
            "num_warmup_steps": 2, "learning_rate": 2e-3, "save_checkpoints_steps": 1000,
            "embedding_size": 16, "generator_hidden_size": 0.5,
            "model_hparam_overrides": overrides, **extra}


def tiny_config(**hparams):
    return PretrainingConfig.from_preset("small", tiny_hparams(**hparams))


def tiny_pretraining_run(root):
    """A 3-step deterministic pre-training of the tiny model in ``root``: the run's
    ``exports`` (tf1/, discriminator/) and ``model_dir``."""
    from electra_tf.config import PretrainingConfig
    from electra_tf.training.pretrain import RunOptions, train
    records = write_learnable_records(root / "records")
    config = PretrainingConfig.from_preset("small", tiny_hparams(num_train_steps=3))
    result = train(config, RunOptions(model_dir=str(root / "model"), pretrain_tfrecords=records,
                                      quiet=True, deterministic=True))
    return {"model_dir": str(root / "model"), **result["exports"]}


def stand_in_steps(monkeypatch):
    """Replaces the driver's training step by one that reads its batch and advances the
    step without running the model (nothing to trace): for the cases about checkpoints,
    data files and messages, not about what a step computes. The model, its optimizer
    and every save, restore and export stay the driver's own."""
    from electra_tf.training import pretrain

    def make_train_step(run, jit_compile):
        def step(iterator):
            next(iterator)  # a corrupt record fails here, as in the real step
            run.base_optimizer.iterations.assign_add(1)
            n = tf.cast(run.base_optimizer.iterations, tf.float32)
            return {"total_loss": 10.0 / n, "mlm_loss": 8.0 / n, "disc_loss": 0.5 / n,
                    "masked_lm_accuracy": n / 100.0}
        return step

    monkeypatch.setattr(pretrain, "make_train_step", make_train_step)
