"""Electric's noise model: the two-tower cloze generator (spec 3.10)."""

from __future__ import annotations

import keras
import tensorflow as tf

from electra_tf.config import TransformerConfig
from electra_tf.networks.embeddings import ElectraEmbeddings
from electra_tf.networks.encoder import ElectraEncoder
from electra_tf.networks.heads import MaskedLMHead


class TwoTowerClozeGenerator(keras.Model):
    """Predicts every token from its left and right context only.

    A left-to-right tower (``generator_ltr``) and a right-to-left tower
    (``generator_rtl``), both reading the original, un-masked input through the
    shared embedding block, each with its own projection when E != G. The
    representation of position i is [ltr output at i-1 ; rtl output at i+1]
    with cyclic wrap-around (position 0 takes ltr at L-1, position L-1 takes rtl
    at 0), so position i never sees token i. A cloze head (``cloze_predictions``,
    dense 2G->E) then scores the whole vocabulary at every position.

    Args:
      config: the generator's transformer config (width G).
      embeddings: the shared embedding block (the discriminator's); ``None`` gives
        each tower its own (``generator_ltr/embeddings``...), as the original does with
        ``untied_generator_embeddings``. The head always uses the ltr tower's table.
    """

    def __init__(self, config: TransformerConfig, embeddings: ElectraEmbeddings | None,
                 **kwargs):
        kwargs.setdefault("name", "two_tower_generator")
        super().__init__(**kwargs)
        self.config = config
        self.ltr = ElectraEncoder(config, scope="generator_ltr", embeddings=embeddings,
                                  attention_direction="ltr")
        self.rtl = ElectraEncoder(config, scope="generator_rtl", embeddings=embeddings,
                                  attention_direction="rtl")
        self.head = MaskedLMHead(config, self.ltr.embeddings.embedding_size,
                                 scope="cloze_predictions")

    def build(self, input_shape=None):
        self.ltr.build()
        self.rtl.build()
        self.head.build((None, None, 2 * self.config.hidden_size))
        super().build(input_shape)

    def call(self, inputs, training=False):
        """Cloze logits at every position.

        Args:
          inputs: dict with the ORIGINAL ``input_ids``, ``input_mask``, ``segment_ids`` [B, L].
        Returns:
          dict with ``logits`` [B, L, V] (position i scored from tokens != i).
        """
        args = (inputs["input_ids"], inputs.get("input_mask"), inputs.get("segment_ids"))
        left = self.ltr(*args, training=training)["sequence_output"]
        right = self.rtl(*args, training=training)["sequence_output"]
        context = tf.concat([tf.roll(left, shift=1, axis=1), tf.roll(right, shift=-1, axis=1)],
                            axis=-1)
        return {"logits": self.head(context, self.ltr.embeddings.word_embeddings)}

    def original_variables(self) -> dict:
        return {**self.ltr.original_variables(), **self.rtl.original_variables(),
                **self.head.original_variables()}
