"""The masked-LM generator: a small transformer plus the MLM head (spec 3.4, 3.5)."""

from __future__ import annotations

from typing import Optional

import keras

from electra_tf.config import TransformerConfig
from electra_tf.networks import layers
from electra_tf.networks.embeddings import ElectraEmbeddings
from electra_tf.networks.encoder import ElectraEncoder
from electra_tf.networks.heads import MaskedLMHead


class Generator(keras.Model):
    """Masked-LM network that proposes replacement tokens.

    By default it reads the discriminator's embedding block (``embeddings``) and
    projects E->G under ``generator/embeddings_project``; its output matrix is
    the shared word-embedding table plus its own ``generator_predictions/output_bias``.

    Args:
      config: the generator's transformer (see ``PretrainingConfig.generator_config``).
      embeddings: shared embedding block; ``None`` gives the generator its own
        (``generator/embeddings``, untied).
      encoder: an existing encoder to reuse entirely (the fully tied generator,
        ``untied_generator=False``, or the MLM-only objective's full-size model).
      scope: original scope of the encoder (``generator``; ``electra`` for MLM-only).
      head_scope: original scope of the MLM head.
    """

    def __init__(self, config: TransformerConfig,
                 embeddings: Optional[ElectraEmbeddings] = None,
                 encoder: Optional[ElectraEncoder] = None,
                 scope: str = "generator", head_scope: str = "generator_predictions",
                 **kwargs):
        kwargs.setdefault("name", "generator")
        super().__init__(**kwargs)
        self.config = config
        self.encoder = encoder or ElectraEncoder(config, scope=scope, embeddings=embeddings)
        self.head = MaskedLMHead(config, self.encoder.embeddings.embedding_size,
                                 scope=head_scope)

    def build(self, input_shape=None):
        if not self.encoder.built:
            self.encoder.build()
        self.head.build((None, None, self.encoder.config.hidden_size))
        super().build(input_shape)

    def call(self, inputs, training=False):
        """Token logits at the masked positions (or at every position).

        Args:
          inputs: dict with ``input_ids`` int [B, L] (the masked sequence),
            ``input_mask`` int [B, L], ``segment_ids`` int [B, L] and optionally
            ``masked_lm_positions`` int [B, N].
        Returns:
          dict with ``logits`` [B, N, V] ([B, L, V] without positions) and
          ``sequence_output`` [B, L, G].
        """
        out = self.encoder(inputs["input_ids"], inputs.get("input_mask"),
                           inputs.get("segment_ids"), training=training)
        hidden = out["sequence_output"]
        positions = inputs.get("masked_lm_positions")
        if positions is not None:
            hidden = layers.gather_positions(hidden, positions)
        logits = self.head(hidden, self.encoder.embeddings.word_embeddings)
        return {"logits": logits, "sequence_output": out["sequence_output"]}

    def original_variables(self) -> dict:
        return {**self.encoder.original_variables(), **self.head.original_variables()}
