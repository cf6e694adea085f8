"""Pre-training and inference FLOPs, counted as the original's ``flops_computation.py`` (spec 8).

    python -m electra_tf.flops                        # the paper's models (spec 8's table)
    python -m electra_tf.flops --model=electra_small,bert_base
    python -m electra_tf.flops --model_size=base --hparams='{"max_seq_length": 512}'

Conventions (spec 8): a multiply-add is 2 FLOPs, the backward pass costs as much as
the forward pass, embedding lookups are one-hot matmuls unless ``sparse_embed_lookup``,
and per element dropout costs 4, LayerNorm 5, GELU 8 and softmax 5. Masked-LM heads
are evaluated at ``output_frac`` of the positions (0.15625 = 20/128 in the paper).
The **[QUIRK]** of the original is kept: the LayerNorm after the attention output
counts 5 FLOPs per token, not 5·h.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping, Sequence

DROPOUT_FLOPS = 4
LAYER_NORM_FLOPS = 5
ACTIVATION_FLOPS = 8
SOFTMAX_FLOPS = 5
PAPER_OUTPUT_FRAC = 0.15625  # 20 of 128 positions carry an MLM softmax

HEADS = ("binary", "mlm")


@dataclasses.dataclass(frozen=True)
class FlopsHparams:
    """The shape of one transformer as far as FLOPs are concerned (spec 8).

    ``None`` fields take the original's defaults: E = H, I = 4H, heads = max(H // 64, 1),
    and the attention projections are H wide unless ``head_size`` is given
    (then ``num_heads * head_size``).
    """

    hidden_size: int
    num_layers: int
    seq_length: int = 512
    vocab_size: int = 30522
    embedding_size: int | None = None
    intermediate_size: int | None = None
    num_heads: int | None = None
    head_size: int | None = None
    output_frac: float = PAPER_OUTPUT_FRAC
    sparse_embed_lookup: bool = False
    decoder: bool = False  # a decoder block also attends to the encoder: attention twice

    def __post_init__(self):
        for name in ("hidden_size", "num_layers", "seq_length", "vocab_size", "embedding_size",
                     "intermediate_size", "num_heads", "head_size"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if self.head_size is not None and self.num_heads is None:
            raise ValueError("head_size needs num_heads")
        if not 0.0 <= self.output_frac <= 1.0:
            raise ValueError(f"output_frac must be in [0, 1], got {self.output_frac}")

    @property
    def e(self) -> int:
        return self.hidden_size if self.embedding_size is None else self.embedding_size

    @property
    def i(self) -> int:
        return 4 * self.hidden_size if self.intermediate_size is None else self.intermediate_size

    @property
    def heads(self) -> int:
        return max(self.hidden_size // 64, 1) if self.num_heads is None else self.num_heads

    @property
    def kqv(self) -> int:
        """Width of the query/key/value projections."""
        return self.hidden_size if self.head_size is None else self.num_heads * self.head_size

    def replace(self, **changes) -> FlopsHparams:
        return dataclasses.replace(self, **changes)


# ---------------------------------------------------------------------------
# Per-token FLOPs
# ---------------------------------------------------------------------------

def block_terms(hp: FlopsHparams) -> dict[str, int]:
    """FLOPs of one transformer block per token, term by term."""
    h, i, s, kqv, heads = hp.hidden_size, hp.i, hp.seq_length, hp.kqv, hp.heads
    attn = 2 if hp.decoder else 1
    attention = {
        "qkv": 3 * 2 * h * kqv,
        "qkv_bias": 3 * kqv,
        "attention_scores": 2 * kqv * s,
        "attention_softmax": SOFTMAX_FLOPS * s * heads,
        "attention_dropout": DROPOUT_FLOPS * s * heads,
        "attention_scale": s * heads,
        "attention_weighted_values": 2 * h * s,
        "attention_output": 2 * h * h,
        "attention_output_bias": h,
        "attention_output_dropout": DROPOUT_FLOPS * h,
        "attention_output_residual": h,
        "attention_output_layer_norm": LAYER_NORM_FLOPS,  # [QUIRK] not 5·h
    }
    terms = {name: attn * flops for name, flops in attention.items()}
    terms.update({
        "intermediate": 2 * h * i,
        "intermediate_activation": ACTIVATION_FLOPS * i,
        "intermediate_bias": i,
        "output": 2 * h * i,
        "output_bias": h,
        "output_dropout": DROPOUT_FLOPS * h,
        "output_residual": h,
        "output_layer_norm": LAYER_NORM_FLOPS * h,
    })
    return terms


def embedding_terms(hp: FlopsHparams) -> dict[str, int]:
    """FLOPs of the input embeddings (and the E -> H projection if E != H) per token."""
    e, h, s = hp.e, hp.hidden_size, hp.seq_length
    terms = {} if hp.sparse_embed_lookup else {"word_lookup": 2 * e * hp.vocab_size}
    terms.update({
        "type_and_position_lookup": 2 * e * (s + 2),
        "add_type_and_position": 2 * e,
        "layer_norm": LAYER_NORM_FLOPS * e,
        "dropout": DROPOUT_FLOPS * e,
    })
    if e != h:
        terms.update({"projection": 2 * h * e, "projection_bias": h})
    return terms


def mlm_head_terms(hp: FlopsHparams, input_size: int | None = None) -> dict[str, int]:
    """FLOPs of the MLM head per *predicted* position (dense H -> E, GELU, LayerNorm, tied
    output embedding, softmax, target). ``input_size`` is the width fed to the dense layer
    (H; 2G for the two-tower cloze head)."""
    e, v = hp.e, hp.vocab_size
    h = hp.hidden_size if input_size is None else input_size
    return {
        "output_embedding": 2 * e * v,
        "dense": 2 * h * e,
        "dense_bias": e,
        "dense_activation": ACTIVATION_FLOPS * e,
        "layer_norm": LAYER_NORM_FLOPS * e,
        "softmax": SOFTMAX_FLOPS * v,
        "target_word": 2 * v,
    }


def binary_head_terms(hp: FlopsHparams) -> dict[str, int]:
    """FLOPs of the discriminator (binary classification) head per token."""
    h = hp.hidden_size
    return {"dense": 2 * h * h, "dense_bias": h, "dense_activation": ACTIVATION_FLOPS * h,
            "logits": 2 * h}


def block_flops_per_token(hp: FlopsHparams) -> int:
    return sum(block_terms(hp).values())


def embedding_flops_per_token(hp: FlopsHparams) -> int:
    return sum(embedding_terms(hp).values())


def mlm_head_flops_per_token(hp: FlopsHparams, input_size: int | None = None) -> int:
    return sum(mlm_head_terms(hp, input_size).values())


def binary_head_flops_per_token(hp: FlopsHparams) -> int:
    return sum(binary_head_terms(hp).values())


# ---------------------------------------------------------------------------
# Per-example and training FLOPs
# ---------------------------------------------------------------------------

def forward_flops(hp: FlopsHparams, head: str = "mlm", towers: int = 1) -> float:
    """One forward pass of one example: ``towers`` encoders (embeddings + layers), then
    the head: "binary" at every position, "mlm" at ``output_frac`` of the positions."""
    if head not in HEADS:
        raise ValueError(f"head must be one of {', '.join(HEADS)}, got {head!r}")
    s = hp.seq_length
    body = towers * s * (hp.num_layers * block_flops_per_token(hp)
                         + embedding_flops_per_token(hp))
    if head == "binary":
        return body + s * binary_head_flops_per_token(hp)
    return body + hp.output_frac * s * mlm_head_flops_per_token(hp, towers * hp.hidden_size)


def train_flops(hp: FlopsHparams, batch_size: float, train_steps: float,
                discriminator: bool = False) -> float:
    """2 (forward + backward) · batch · steps · forward FLOPs; the discriminator has the
    binary head, anything else (BERT, generators) the MLM head."""
    return 2 * batch_size * train_steps * forward_flops(hp, "binary" if discriminator else "mlm")


def inference_flops(hp: FlopsHparams) -> float:
    """One forward pass of one example through the encoder and a binary head."""
    return forward_flops(hp, "binary")


def electra_hparams(h_d: int, l_d: int, h_g: int, l_g: int, *, tied_embeddings: bool = True,
                    e: int | None = None, s: int = 512, v: int = 30522,
                    output_frac: float = PAPER_OUTPUT_FRAC
                    ) -> tuple[FlopsHparams, FlopsHparams]:
    """(discriminator, generator) of an ELECTRA model. E defaults to the discriminator's
    width; a tied generator uses that width for its embeddings (and projects E -> G),
    an untied one its own width G."""
    e_d = h_d if e is None else e
    disc = FlopsHparams(h_d, l_d, seq_length=s, vocab_size=v, embedding_size=e_d,
                        output_frac=output_frac)
    gen = FlopsHparams(h_g, l_g, seq_length=s, vocab_size=v,
                       embedding_size=e_d if tied_embeddings else None, output_frac=output_frac)
    return disc, gen


def electra_train_flops(h_d: int, l_d: int, h_g: int, l_g: int, batch_size: float,
                        train_steps: float, tied_embeddings: bool = True, **kwargs) -> float:
    """Discriminator train FLOPs + generator train FLOPs (spec 8)."""
    disc, gen = electra_hparams(h_d, l_d, h_g, l_g, tied_embeddings=tied_embeddings, **kwargs)
    return (train_flops(disc, batch_size, train_steps, discriminator=True)
            + train_flops(gen, batch_size, train_steps))


# ---------------------------------------------------------------------------
# A pre-training run: its networks, batch and steps
# ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Network:
    """One network trained in a run; ``towers`` > 1 for Electric's two-tower generator."""

    name: str
    hparams: FlopsHparams
    head: str
    towers: int = 1

    def __post_init__(self):
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {', '.join(HEADS)}, got {self.head!r}")

    def forward_flops(self) -> float:
        return forward_flops(self.hparams, self.head, self.towers)


@dataclasses.dataclass(frozen=True)
class TrainingFlops:
    """The FLOPs of a pre-training run.

    ``inference`` is the network that is fine-tuned downstream (the discriminator, or the
    masked LM itself), counted with a binary head. ``profiled`` replaces the formula for
    models whose total comes from the TF profiler (ELMo, XLNet).
    """

    name: str
    networks: tuple[Network, ...] = ()
    batch_size: float = 0
    train_steps: float = 0
    inference: FlopsHparams | None = None
    setting: str = ""
    reported: float | None = None
    profiled: float | None = None

    @property
    def flops_per_example_step(self) -> float | None:
        """Training FLOPs of one example in one step (forward + backward, all networks)."""
        if self.profiled is not None:
            return None
        return 2 * sum(n.forward_flops() for n in self.networks)

    @property
    def train_flops(self) -> float:
        if self.profiled is not None:
            return self.profiled
        return sum(2 * self.batch_size * self.train_steps * n.forward_flops()
                   for n in self.networks)

    @property
    def inference_flops(self) -> float | None:
        return None if self.inference is None else inference_flops(self.inference)


def _single(name: str, setting: str, reported: float, hp: FlopsHparams, batch_size: float,
            train_steps: float) -> TrainingFlops:
    return TrainingFlops(name, (Network("masked LM", hp, "mlm"),), batch_size, train_steps,
                         inference=hp, setting=setting, reported=reported)


def _electra(name: str, setting: str, reported: float, batch_size: float, train_steps: float,
             *args, **kwargs) -> TrainingFlops:
    disc, gen = electra_hparams(*args, **kwargs)
    return TrainingFlops(name, (Network("discriminator", disc, "binary"),
                                Network("generator", gen, "mlm")),
                         batch_size, train_steps, inference=disc, setting=setting,
                         reported=reported)


def _t5_11b() -> TrainingFlops:
    # Encoder: no output softmax; decoder: cross-attention doubles its attention terms and
    # every position carries an output softmax.
    t5 = FlopsHparams(1024, 24, vocab_size=32000, intermediate_size=65536, num_heads=128,
                      head_size=128, output_frac=0.0)
    return TrainingFlops(
        "t5_11b", (Network("encoder", t5, "mlm"),
                   Network("decoder", t5.replace(output_frac=1.0, decoder=True), "mlm")),
        2048, 1_000_000, setting="encoder + decoder, h1024, 24L, i65536, 128 heads x 128, "
        "v32000, s512, batch 2048, 1M steps", reported=4.58e22)


def _paper_models() -> dict[str, TrainingFlops]:
    models = [
        TrainingFlops("elmo", setting="TF profiler", reported=3.41e18, profiled=3.41e18),
        _single("gpt", "h768, 12L, v40000, output_frac 1, s512, batch 128, 960,800 steps",
                3.97e19, FlopsHparams(768, 12, vocab_size=40000, output_frac=1.0),
                128, 960_800),
        _single("bert_small", "h256, 12L, e128, s128, batch 128, 1.45M steps", 1.42e18,
                FlopsHparams(256, 12, seq_length=128, embedding_size=128), 128, 1_450_000),
        _single("bert_base", "h768, 12L, s512, batch 256, 1M steps", 6.43e19,
                FlopsHparams(768, 12), 256, 1_000_000),
        _single("bert_large", "h1024, 24L, s512, batch 256, 1M steps", 1.92e20,
                FlopsHparams(1024, 24), 256, 1_000_000),
        _electra("electra_small", "disc 256/12, gen 64/12, e128 tied, s128, batch 128, "
                 "1M steps", 1.29e18, 128, 1_000_000, 256, 12, 64, 12, e=128, s=128),
        _electra("electra_base", "disc 768/12, gen 256/12, tied, s512, batch 256, 766K steps",
                 6.42e19, 256, 766_000, 768, 12, 256, 12),
        _electra("electra_400k", "disc 1024/24, gen 256/24, tied, s512, batch 2048, "
                 "400K steps", 7.12e20, 2048, 400_000, 1024, 24, 256, 24),
        _electra("electra_1.75M", "disc 1024/24, gen 256/24, tied, s512, batch 2048, "
                 "1.75M steps", 3.11e21, 2048, 1_750_000, 1024, 24, 256, 24),
        TrainingFlops("xlnet", setting="TF profiler", reported=3.86e21, profiled=3.86e21),
        _single("roberta", "h1024, 24L, v50265, s512, batch 8000, 500K steps", 3.19e21,
                FlopsHparams(1024, 24, vocab_size=50265), 8000, 500_000),
        _single("albert", "h4096, 12L, v30000, e128, s512, batch 4096, 1.5M steps", 3.11e22,
                FlopsHparams(4096, 12, vocab_size=30000, embedding_size=128), 4096, 1_500_000),
        _t5_11b(),
    ]
    return {m.name: m for m in models}


PAPER_MODELS: Mapping[str, TrainingFlops] = _paper_models()


# ---------------------------------------------------------------------------
# A config of this package
# ---------------------------------------------------------------------------

def flops_for_config(config, output_frac: float | None = PAPER_OUTPUT_FRAC,
                     sparse_embed_lookup: bool = False, name: str | None = None
                     ) -> TrainingFlops:
    """The FLOPs of pre-training with a :class:`electra_tf.config.PretrainingConfig`.

    The networks are the run's recipe's (``Recipe.flops_networks`` of
    :mod:`electra_tf.pretraining.recipes`, spec 3.4): the discriminator with its binary
    head; a small generator (width ``generator_hidden_size`` of H, embedding width E when
    tied), none for a uniform generator, a full-size masked LM for the MLM-only objective
    or a shared generator, and two towers with a cloze head at every position for
    Electric's generator.
    ``output_frac=None`` uses the config's own ``max_predictions_per_seq / max_seq_length``
    for the MLM head instead of the paper's 0.15625.
    """
    from electra_tf.config import ConfigError
    from electra_tf.pretraining.recipes import Recipe

    s = config.max_seq_length
    frac = config.max_predictions_per_seq / s if output_frac is None else output_frac

    def hparams(t) -> FlopsHparams:
        return FlopsHparams(t.hidden_size, t.num_hidden_layers, seq_length=s,
                            vocab_size=t.vocab_size, embedding_size=t.embedding_size,
                            intermediate_size=t.intermediate_size,
                            num_heads=t.num_attention_heads, output_frac=frac,
                            sparse_embed_lookup=sparse_embed_lookup)

    disc = hparams(config.discriminator_config())
    networks = [Network(n.name, hparams(n.transformer).replace(output_frac=1.0)
                        if n.every_position else hparams(n.transformer), n.head,
                        towers=n.towers)
                for n in Recipe.for_config(config).flops_networks()]
    if not networks:
        raise ConfigError("uniform_generator without an RTD/Electric objective trains nothing")
    return TrainingFlops(name or f"config:{config.model_size}", tuple(networks),
                         config.train_batch_size, config.num_train_steps, inference=disc,
                         setting=f"s{s}, batch {config.train_batch_size}, "
                         f"{config.num_train_steps:,} steps, output_frac {frac:g}")


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

def format_flops(x: float | None) -> str:
    """3 significant figures as the paper prints them: 1.29e18; '-' for None."""
    if x is None:
        return "-"
    mantissa, exponent = f"{x:.2e}".split("e")
    return f"{mantissa}e{int(exponent)}"


_COLUMNS = ("model", "train FLOPs", "reported", "per example-step", "inference/example",
            "setting")


def format_table(runs: Sequence[TrainingFlops]) -> str:
    rows = [_COLUMNS] + [
        (r.name, format_flops(r.train_flops), format_flops(r.reported),
         format_flops(r.flops_per_example_step), format_flops(r.inference_flops), r.setting)
        for r in runs]
    widths = [max(len(row[k]) for row in rows) for k in range(len(_COLUMNS) - 1)]
    lines = []
    for row in rows:
        cells = [f"{row[0]:<{widths[0]}}"] + [f"{c:>{w}}" for c, w in zip(row[1:-1],
                                                                         widths[1:])]
        lines.append("  ".join(cells + [row[-1]]).rstrip())
    return "\n".join(lines)


def format_networks(run: TrainingFlops) -> str:
    header = (f"{'network':<34} {'H':>5} {'layers':>6} {'heads':>5} {'I':>6} {'E':>5} "
              f"{'V':>6} {'towers':>6} {'forward/example':>15}")
    lines = [header]
    for n in run.networks:
        hp = n.hparams
        lines.append(f"{n.name:<34} {hp.hidden_size:>5} {hp.num_layers:>6} {hp.heads:>5} "
                     f"{hp.i:>6} {hp.e:>5} {hp.vocab_size:>6} {n.towers:>6} "
                     f"{format_flops(n.forward_flops()):>15}")
    return "\n".join(lines)


def _parse_output_frac(value: str) -> float | None:
    if value == "paper":
        return PAPER_OUTPUT_FRAC
    if value == "config":
        return None
    return float(value)


def _main(f, positional) -> int:
    from electra_tf import cli
    from electra_tf.config import PretrainingConfig

    if positional:
        raise cli.UsageError(f"unexpected arguments: {' '.join(positional)}")
    unknown = [m for m in (f.model or []) if m not in PAPER_MODELS]
    if unknown:
        raise cli.UsageError(f"unknown model {', '.join(unknown)}; known: "
                             f"{', '.join(PAPER_MODELS)}")
    try:
        output_frac = _parse_output_frac(f.output_frac)
    except ValueError:
        raise cli.UsageError(f"--output_frac must be paper, config or a number, got "
                             f"{f.output_frac!r}") from None
    if f.model or f.model_size is None:
        print(format_table([PAPER_MODELS[m] for m in (f.model or PAPER_MODELS)]))
    if f.model_size is not None:
        config = PretrainingConfig.from_preset(f.model_size, f.hparams)
        run = flops_for_config(config, output_frac=output_frac,
                               sparse_embed_lookup=f.sparse_embed_lookup)
        if f.model:
            print()
        print(format_networks(run))
        print()
        print(format_table([run]))
    return 0


def define_flags(flag_values) -> None:
    """The flags of ``python -m electra_tf.flops`` (importing this module defines none)."""
    from absl import flags

    fv = {"flag_values": flag_values}
    flags.DEFINE_list("model", None, "Paper models to print (comma-separated): "
                      + ", ".join(PAPER_MODELS) + ". Default: all, unless --model_size.", **fv)
    flags.DEFINE_string("model_size", None, "Preset in configs/ (small, base, large): print "
                        "the FLOPs of pre-training with this config.", **fv)
    flags.DEFINE_string("hparams", None, "JSON dict or path to a .json file of pre-training "
                        "hparams (with --model_size).", **fv)
    flags.DEFINE_string("output_frac", "paper", "Fraction of positions with an MLM softmax: "
                        "paper (0.15625), config (max_predictions_per_seq / max_seq_length) "
                        "or a number.", **fv)
    flags.DEFINE_bool("sparse_embed_lookup", False, "Count input embedding lookups as "
                      "gathers (free) instead of one-hot matmuls.", **fv)


def main(argv=None) -> int:
    """Prints the FLOPs tables ``argv`` asks for; returns the exit status."""
    from electra_tf import cli
    from electra_tf.config import ConfigError
    return cli.run(define_flags, _main, argv, user_errors=(ConfigError, ValueError),
                   description=__doc__)


def console_main() -> None:
    sys.exit(main(sys.argv))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
