"""One forward pass of ELECTRA, Electric or MLM pre-training (spec 3.2-3.11)."""

from __future__ import annotations

from typing import Mapping, Optional

import tensorflow as tf

from electra_tf.config import PretrainingConfig
from electra_tf.networks import PretrainingModels
from electra_tf.pretraining import losses
from electra_tf.pretraining.masking import candidate_mask, mask_inputs, masked_lm_weights
from electra_tf.pretraining.sampling import replace_tokens, sample_tokens
from electra_tf.pretraining.recipes import Recipe


class PretrainingObjective:
    """Masks a batch, runs generator and discriminator, and returns the losses.

    What the networks are and how the generator is read comes from the run's recipe
    (``recipe``, :mod:`electra_tf.pretraining.recipes`).

    Args:
      config: the run's :class:`PretrainingConfig`.
      special_ids: ids of "cls", "sep" and "mask" in the vocabulary.
      models: the networks (built by the config's recipe when omitted).
    """

    def __init__(self, config: PretrainingConfig, special_ids: Mapping[str, int],
                 models: Optional[PretrainingModels] = None):
        self.config = config
        self.special_ids = dict(special_ids)
        self.recipe = Recipe.for_config(config)
        self.models = models or PretrainingModels(*self.recipe.build_networks())

    @property
    def trainable_variables(self) -> list:
        seen, result = set(), []
        for model in self.models.models:
            for variable in model.trainable_variables:
                if id(variable) not in seen:
                    seen.add(id(variable))
                    result.append(variable)
        return result

    def loss_denominators(self, features: Mapping[str, tf.Tensor]) -> dict:
        """The token counts that normalise the losses of these rows (scalars, float32).

        ``mlm``: the generator loss's (masked slots, or Electric's cloze candidates);
        ``masked_slots``: the masked slots; ``disc``: the discriminator's (real tokens).
        Summed over every shard of an update batch and passed back to ``__call__``, they
        make the shards' losses add up to the original's batch-level token means (spec
        3.6, 3.8).
        """
        input_ids = tf.cast(features["input_ids"], tf.int32)
        candidates = candidate_mask(input_ids, features["input_mask"], self.special_ids)
        slots = tf.reduce_sum(masked_lm_weights(candidates, features["input_mask"],
                                                self.config.mask_prob,
                                                self.config.max_predictions_per_seq))
        mlm = self.recipe.generator_denominator(candidates, slots)
        return {"mlm": mlm, "masked_slots": slots,
                "disc": tf.reduce_sum(tf.cast(features["input_mask"], tf.float32))}

    def __call__(self, features: Mapping[str, tf.Tensor], seed: tf.Tensor,
                 training: bool = True, denominators: Optional[Mapping] = None) -> dict:
        """Runs the objective.

        Args:
          features: ``input_ids``, ``input_mask``, ``segment_ids`` int [B, L].
          seed: [2] int seed of this step (``pretraining.random.step_seed``).
          denominators: ``loss_denominators`` summed over the whole update batch when
            ``features`` is one shard of it; the losses are then this shard's share
            (they sum to the batch's losses). Default: these rows' own counts.
        Returns:
          dict with ``total_loss`` and ``mlm_loss`` (scalars), the masking
          (``masked_lm_*`` [B, N]), ``mlm_logits`` [B, N, V] and, for RTD/Electric,
          ``sampled_ids`` [B, N], ``fake_ids``/``disc_labels``/``disc_logits`` [B, L],
          ``disc_loss`` and ``disc_per_example_loss`` [B].
        """
        c = self.config
        features = {k: tf.cast(features[k], tf.int32)
                    for k in ("input_ids", "input_mask", "segment_ids")}
        with tf.name_scope("masking"):  # op names only: they let profiles attribute time
            masked = mask_inputs(features["input_ids"], features["input_mask"],
                                 mask_prob=c.mask_prob,
                                 max_predictions=c.max_predictions_per_seq,
                                 special_ids=self.special_ids, seed=seed)
        denominators = denominators or {}
        mlm_logits, gen_loss, cloze = self.recipe.generator_logits(
            self.models.generator, features, masked, self.special_ids, training,
            denominators.get("mlm"))
        out = {**masked, "mlm_logits": mlm_logits, "mlm_loss": gen_loss,
               "total_loss": c.gen_weight * gen_loss}
        if not self.recipe.has_discriminator:
            return out
        with tf.name_scope("sampling"):
            sampled = sample_tokens(mlm_logits, seed, c.temperature,
                                    masked["masked_lm_ids"] if c.disallow_correct else None)
            fake_ids, labels, _ = replace_tokens(
                features["input_ids"], sampled, masked["masked_lm_positions"],
                label_every_replacement=self.recipe.label_every_replacement)
        disc_logits = self.models.discriminator(
            {**features, "input_ids": fake_ids}, training=training)["logits"]
        disc_logits = self.recipe.discriminator_logits(disc_logits, cloze, fake_ids)
        with tf.name_scope("discriminator_loss"):
            disc_loss, per_example = losses.discriminator_loss(disc_logits, labels,
                                                               features["input_mask"],
                                                               denominators.get("disc"))
        out.update(sampled_ids=sampled, fake_ids=fake_ids, disc_labels=labels,
                   disc_logits=tf.cast(disc_logits, tf.float32), disc_loss=disc_loss,
                   disc_per_example_loss=per_example,
                   total_loss=out["total_loss"] + c.disc_weight * disc_loss)
        return out
