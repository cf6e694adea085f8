"""Keras layers and models of ELECTRA: layers -> encoder -> generator/discriminator."""

from electra_tf.modeling.discriminator import Discriminator
from electra_tf.modeling.electric import TwoTowerClozeGenerator
from electra_tf.modeling.embeddings import ElectraEmbeddings
from electra_tf.modeling.encoder import ElectraEncoder
from electra_tf.modeling.generator import Generator
from electra_tf.modeling.heads import DiscriminatorHead, MaskedLMHead
from electra_tf.modeling.pretraining_models import PretrainingModels, build_pretraining_models
from electra_tf.modeling.transformer import TransformerLayer, attention_bias

__all__ = [
    "Discriminator", "DiscriminatorHead", "ElectraEmbeddings", "ElectraEncoder", "Generator",
    "MaskedLMHead", "PretrainingModels", "TransformerLayer", "TwoTowerClozeGenerator",
    "attention_bias", "build_pretraining_models",
]
