"""Runs a peer benchmark script under a Keras 2 (tf-keras) mixed-precision policy.

    python benchmarks/peers/keras_policy.py mixed_bfloat16 ../shared/bench/peers_mg.py --batch 32

The policy a Model Garden user sets for mixed precision (official/ reads tf_keras' global
policy when it builds layers), applied before the script runs; the script is unchanged.
"""
import runpy
import sys

if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: keras_policy.py POLICY SCRIPT [ARGS...]")
    policy, script = sys.argv[1], sys.argv[2]
    import tf_keras
    tf_keras.mixed_precision.set_global_policy(policy)
    sys.argv = [script] + sys.argv[3:]
    runpy.run_path(script, run_name="__main__")
