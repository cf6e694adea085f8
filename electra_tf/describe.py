"""Builds the pre-training networks of a preset and prints their parameter table.

    python -m electra_tf.describe --model_size=small [--hparams='{"generator_hidden_size": 1.0}']
"""

from __future__ import annotations

import re
import sys
from collections import OrderedDict

from absl import flags

from electra_tf import cli


def define_flags(flag_values: flags.FlagValues) -> None:
    """The flags of ``python -m electra_tf.describe``."""
    flags.DEFINE_string("model_size", "small", "Preset in configs/: small, base or large.",
                        flag_values=flag_values)
    flags.DEFINE_string("hparams", None,
                        "JSON dict or path to a .json file of pre-training hparams.",
                        flag_values=flag_values)


def _component(name: str) -> str:
    """Groups an original variable name into a row of the table."""
    m = re.match(r"^([^/]+)/encoder/layer_\d+/", name)
    if m:
        return f"{m.group(1)}/encoder (layers)"
    m = re.match(r"^([^/]+/embeddings)(_project)?/", name)
    if m:
        return m.group(1) + (m.group(2) or "")
    return name.split("/")[0]


def parameter_table(variables: dict) -> "OrderedDict[str, tuple[int, int]]":
    """{component: (number of tensors, number of parameters)} in first-seen order."""
    import numpy as np
    table: "OrderedDict[str, list]" = OrderedDict()
    for name, variable in variables.items():
        row = table.setdefault(_component(name), [0, 0])
        row[0] += 1
        row[1] += int(np.prod(variable.shape))
    return OrderedDict((k, tuple(v)) for k, v in table.items())


def describe(model_size: str, hparams=None, out=sys.stdout) -> int:
    """Prints config and parameter table; returns the total parameter count."""
    from electra_tf.config import PretrainingConfig
    from electra_tf.networks import build_pretraining_models

    config = PretrainingConfig.from_preset(model_size, hparams)
    disc, gen = config.discriminator_config(), config.generator_config()
    print(f"ELECTRA-{config.model_size}: discriminator H={disc.hidden_size} "
          f"layers={disc.num_hidden_layers} heads={disc.num_attention_heads} "
          f"I={disc.intermediate_size} E={disc.embedding_size}; generator H={gen.hidden_size} "
          f"layers={gen.num_hidden_layers} heads={gen.num_attention_heads} "
          f"I={gen.intermediate_size}; vocab={disc.vocab_size}", file=out)
    models = build_pretraining_models(config)
    table = parameter_table(models.original_variables())
    width = max(len(k) for k in table) + 2
    print(f"{'component (original scope)':<{width}} {'tensors':>8} {'parameters':>14}", file=out)
    for name, (tensors, params) in table.items():
        print(f"{name:<{width}} {tensors:>8} {params:>14,}", file=out)
    total = sum(p for _, p in table.values())
    print(f"{'total':<{width}} {sum(t for t, _ in table.values()):>8} {total:>14,}", file=out)
    return total


def _main(FLAGS: flags.FlagValues, positional) -> int:
    if positional:
        raise cli.UsageError(f"unexpected arguments: {' '.join(positional)}")
    describe(FLAGS.model_size, FLAGS.hparams)
    return 0


def main(argv=None) -> int:
    """Prints the parameter table ``argv`` asks for; returns the exit status."""
    cli.quiet_tensorflow_startup()
    from electra_tf.config import ConfigError
    return cli.run(define_flags, _main, argv, user_errors=(ConfigError,), description=__doc__)


console_main = cli.console(main)

if __name__ == "__main__":
    sys.exit(main())
