"""The pre-training objectives: the recipe of each kind of run, masking, sampling, losses,
metrics (spec 3).

The names below are imported on first use, so that reading a recipe (``flops``, the
checkpoint name layer) does not import TensorFlow.
"""

_EXPORTS = {
    "PretrainingMetrics": "electra_tf.pretraining.metrics",
    "PretrainingObjective": "electra_tf.pretraining.objective",
    "candidate_mask": "electra_tf.pretraining.masking",
    "mask_inputs": "electra_tf.pretraining.masking",
    "scatter_update": "electra_tf.pretraining.masking",
    "replace_tokens": "electra_tf.pretraining.sampling",
    "sample_tokens": "electra_tf.pretraining.sampling",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'electra_tf.pretraining' has no attribute {name!r}")
