"""The discriminator: the encoder that gets fine-tuned, plus the replaced-token head (spec 3.8)."""

from __future__ import annotations

from typing import Optional

import keras

from electra_tf.config import TransformerConfig
from electra_tf.networks.embeddings import ElectraEmbeddings
from electra_tf.networks.encoder import ElectraEncoder
from electra_tf.networks.heads import DiscriminatorHead


class Discriminator(keras.Model):
    """Predicts, for every token, whether it was replaced by the generator.

    Args:
      config: the discriminator's transformer (``PretrainingConfig.discriminator_config``).
      embeddings: an existing embedding block to use; ``None`` creates
        ``electra/embeddings`` (which the default generator then shares).
      encoder: reuse an existing encoder (fully tied generator/discriminator).
      scope: original encoder scope, ``electra``.
    """

    def __init__(self, config: TransformerConfig,
                 embeddings: Optional[ElectraEmbeddings] = None,
                 encoder: Optional[ElectraEncoder] = None, scope: str = "electra", **kwargs):
        kwargs.setdefault("name", "discriminator")
        super().__init__(**kwargs)
        self.config = config
        self.encoder = encoder or ElectraEncoder(config, scope=scope, embeddings=embeddings)
        self.head = DiscriminatorHead(config)

    def build(self, input_shape=None):
        if not self.encoder.built:
            self.encoder.build()
        self.head.build((None, None, self.config.hidden_size))
        super().build(input_shape)

    def call(self, inputs, training=False):
        """Replaced-token logits.

        Args:
          inputs: dict with ``input_ids``, ``input_mask``, ``segment_ids``, int [B, L].
        Returns:
          dict with ``logits`` [B, L] (fake iff > 0), ``sequence_output`` [B, L, H],
          ``pooled_output`` [B, H] (raw [CLS] vector) and ``hidden_states``
          (num_layers + 1 tensors [B, L, H]).
        """
        out = self.encoder(inputs["input_ids"], inputs.get("input_mask"),
                           inputs.get("segment_ids"), training=training)
        return {"logits": self.head(out["sequence_output"]),
                "sequence_output": out["sequence_output"],
                "pooled_output": out["pooled_output"],
                "hidden_states": out["hidden_states"]}

    def original_variables(self) -> dict:
        return {**self.encoder.original_variables(), **self.head.original_variables()}
