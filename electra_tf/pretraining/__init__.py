"""The pre-training objectives: masking, sampling, losses, metrics (spec 3)."""

from electra_tf.pretraining.masking import candidate_mask, mask_inputs, scatter_update
from electra_tf.pretraining.metrics import PretrainingMetrics
from electra_tf.pretraining.objective import PretrainingObjective
from electra_tf.pretraining.sampling import replace_tokens, sample_tokens

__all__ = ["PretrainingMetrics", "PretrainingObjective", "candidate_mask", "mask_inputs",
           "replace_tokens", "sample_tokens", "scatter_update"]
