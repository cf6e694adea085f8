"""Deterministic random weights for the Hugging Face ELECTRA golden fixtures.

NumPy only (no torch, no TensorFlow): ``make_hf_golden.py`` uses it to fill the
PyTorch models that produce the fixtures, and the TF test suite uses it to
regenerate exactly the same float32 arrays from the seed stored in a fixture.

Keys are Hugging Face ``state_dict`` names; arrays are in torch layout
(``nn.Linear`` weights are ``[out, in]``, embeddings are ``[rows, width]``).

Rules (a draw is one ``rng.standard_normal(shape)`` in float64, then cast to
float32; keys are visited in sorted order with one ``np.random.default_rng``):

* ``*LayerNorm.weight``  -> 1 + N(0, 0.1)
* ``*LayerNorm.bias``    -> N(0, 0.1)
* any other ``*.weight`` -> N(0, 0.05)   (dense kernels, embedding tables)
* any other ``*.bias``   -> N(0, 0.05)

Tied parameters (``generator_lm_head.weight`` aliases the word-embedding table
in ``ElectraForMaskedLM``) are not drawn: leave them out of ``shapes`` and
copy the target with :func:`apply_ties`.
"""

from __future__ import annotations

import hashlib
from typing import Mapping

import numpy as np

WEIGHT_STD = 0.05
BIAS_STD = 0.05
LAYERNORM_STD = 0.1

# alias key -> key it is tied to, for transformers.ElectraForMaskedLM
GENERATOR_TIED_KEYS = {
    "generator_lm_head.weight": "electra.embeddings.word_embeddings.weight",
}


def _param_kind(key: str) -> str:
    leaf = key.rsplit(".", 1)[-1]
    is_layernorm = ".LayerNorm." in "." + key
    if leaf == "weight":
        return "ln_gamma" if is_layernorm else "weight"
    if leaf == "bias":
        return "ln_beta" if is_layernorm else "bias"
    raise ValueError(f"cannot classify parameter {key!r} (expected '.weight' or '.bias')")


def make_weights(shapes: Mapping[str, tuple], seed: int) -> dict[str, np.ndarray]:
    """Return ``{key: float32 array}`` for every key of ``shapes``, in sorted key order.

    ``shapes`` maps Hugging Face state_dict names to shapes (any int sequence).
    The result depends only on the sorted (key, shape) pairs and ``seed``.
    """
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for key in sorted(shapes):
        shape = tuple(int(d) for d in shapes[key])
        kind = _param_kind(key)
        z = rng.standard_normal(shape)  # float64
        if kind == "ln_gamma":
            v = 1.0 + LAYERNORM_STD * z
        elif kind == "ln_beta":
            v = LAYERNORM_STD * z
        elif kind == "weight":
            v = WEIGHT_STD * z
        else:
            v = BIAS_STD * z
        out[key] = np.ascontiguousarray(v.astype(np.float32))
    return out


def apply_ties(weights: Mapping[str, np.ndarray], ties: Mapping[str, str]) -> dict[str, np.ndarray]:
    """Return a copy of ``weights`` with ``alias -> target`` entries added (same array)."""
    full = dict(weights)
    for alias, target in ties.items():
        full[alias] = weights[target]
    return full


def weights_sha256(weights: Mapping[str, np.ndarray]) -> str:
    """sha256 hex digest of the little-endian float32 bytes of all arrays, in sorted key order."""
    h = hashlib.sha256()
    for key in sorted(weights):
        h.update(np.ascontiguousarray(weights[key], dtype="<f4").tobytes())
    return h.hexdigest()
