"""Keras layers and models of ELECTRA: layers -> encoder -> generator/discriminator."""

from electra_tf.networks.discriminator import Discriminator
from electra_tf.networks.electric import TwoTowerClozeGenerator
from electra_tf.networks.embeddings import ElectraEmbeddings
from electra_tf.networks.encoder import ElectraEncoder
from electra_tf.networks.generator import Generator
from electra_tf.networks.heads import DiscriminatorHead, MaskedLMHead
from electra_tf.networks.pretraining import PretrainingModels, build_pretraining_models
from electra_tf.networks.transformer import TransformerLayer, attention_bias

__all__ = [
    "Discriminator", "DiscriminatorHead", "ElectraEmbeddings", "ElectraEncoder", "Generator",
    "MaskedLMHead", "PretrainingModels", "TransformerLayer", "TwoTowerClozeGenerator",
    "attention_bias", "build_pretraining_models",
]
