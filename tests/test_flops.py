"""FLOPs accounting (spec 8): the paper's totals, a hand count of a tiny model, configs, CLI."""

import subprocess
import sys
from pathlib import Path

import pytest

from electra_tf import flops
from electra_tf.config import ConfigError, PretrainingConfig
from electra_tf.flops import PAPER_MODELS, FlopsHparams

ROOT = Path(__file__).resolve().parents[1]

# Spec 8, "Reported totals (pre-training FLOPs)", as printed (3 significant figures).
SPEC_TOTALS = {
    "elmo": "3.41e18",
    "xlnet": "3.86e21",
    "gpt": "3.97e19",
    "bert_small": "1.42e18",
    "bert_base": "6.43e19",
    "bert_large": "1.92e20",
    "electra_small": "1.29e18",
    "electra_base": "6.42e19",
    "electra_400k": "7.12e20",
    "electra_1.75M": "3.11e21",
    "roberta": "3.19e21",
    "albert": "3.11e22",
    "t5_11b": "4.58e22",
}

# Spec 8, "Derived per-example numbers": (train FLOPs per example-step, inference per example).
SPEC_PER_EXAMPLE = {
    "electra_small": ("1.01e10", "3.68e9"),
    "electra_base": ("3.28e11", "1.22e11"),
    "electra_400k": ("8.69e11", "3.70e11"),
}

PAPER_BASE = {"max_seq_length": 512, "generator_hidden_size": 0.33333, "train_batch_size": 256,
              "num_train_steps": 766000}
PAPER_LARGE = {"max_seq_length": 512, "mask_prob": 0.25, "train_batch_size": 2048,
               "num_train_steps": 400000}


def sig3(x: float) -> str:
    """1.29e18 / 3.68e9: the spec's printing, written here independently of the module."""
    mantissa, exponent = f"{x:.2e}".split("e")
    return f"{mantissa}e{int(exponent)}"


# ---------------------------------------------------------------------------
# The paper's numbers
# ---------------------------------------------------------------------------

def test_registry_holds_exactly_the_spec_models():
    assert set(PAPER_MODELS) == set(SPEC_TOTALS)


@pytest.mark.parametrize("name", sorted(SPEC_TOTALS))
def test_registry_reproduces_reported_total(name):
    model = PAPER_MODELS[name]
    assert sig3(model.train_flops) == SPEC_TOTALS[name]
    assert sig3(model.reported) == SPEC_TOTALS[name]


def test_profiler_models_are_constants_and_the_others_are_computed():
    for name, model in PAPER_MODELS.items():
        if name in ("elmo", "xlnet"):
            assert model.profiled is not None and not model.networks
            assert model.flops_per_example_step is None and model.inference_flops is None
        else:
            assert model.profiled is None and model.networks
            assert model.train_flops == pytest.approx(
                model.batch_size * model.train_steps * model.flops_per_example_step, rel=1e-12)


@pytest.mark.parametrize("name", sorted(SPEC_PER_EXAMPLE))
def test_derived_per_example_numbers(name):
    train, infer = SPEC_PER_EXAMPLE[name]
    model = PAPER_MODELS[name]
    assert sig3(model.flops_per_example_step) == train
    assert sig3(model.inference_flops) == infer


def test_electra_1_75m_is_the_400k_run_for_longer():
    long, short = PAPER_MODELS["electra_1.75M"], PAPER_MODELS["electra_400k"]
    assert long.flops_per_example_step == short.flops_per_example_step
    assert long.train_flops / short.train_flops == pytest.approx(1.75e6 / 4e5, rel=1e-12)


def test_tied_generator_uses_the_discriminator_embedding_width():
    # electra_base passes no e: E defaults to the discriminator's 768 and the tied
    # generator (G=256) projects 768 -> 256. Using G as its width gives 5.68e19, not 6.42e19.
    disc, gen = flops.electra_hparams(768, 12, 256, 12)
    assert (disc.e, gen.e, gen.hidden_size) == (768, 768, 256)
    untied = flops.electra_train_flops(768, 12, 256, 12, 256, 766000, tied_embeddings=False)
    assert sig3(untied) == "5.68e19"
    assert sig3(flops.electra_train_flops(768, 12, 256, 12, 256, 766000)) == "6.42e19"


def test_gpt_needs_output_frac_one():
    gpt = PAPER_MODELS["gpt"].networks[0].hparams
    assert gpt.output_frac == 1.0
    assert sig3(flops.train_flops(gpt.replace(output_frac=0.15625), 128, 960800)) != "3.97e19"


# ---------------------------------------------------------------------------
# Independent hand count of a tiny model (no module helpers used for the expectation)
# ---------------------------------------------------------------------------

# h=8, i=16, s=4, heads=max(8//64, 1)=1, kqv=h=8, v=10, e=4, 2 layers.
TINY = {"hidden_size": 8, "num_layers": 2, "seq_length": 4, "vocab_size": 10,
        "embedding_size": 4, "intermediate_size": 16}

TINY_ATTENTION = (
    3 * 2 * 8 * 8      # Q/K/V projections 3·2·h·kqv = 384
    + 3 * 8            # their biases 3·kqv = 24
    + 2 * 8 * 4        # scores 2·kqv·s = 64
    + 5 * 4 * 1        # softmax 5·s·heads = 20
    + 4 * 4 * 1        # attention dropout 4·s·heads = 16
    + 4 * 1            # scaling s·heads = 4
    + 2 * 8 * 4        # weighted values 2·h·s = 64
    + 2 * 8 * 8        # attention output 2·h² = 128
    + 8                # its bias h
    + 4 * 8            # dropout 4h = 32
    + 8                # residual h
    + 5                # LayerNorm: 5, not 5h  [QUIRK]
)
TINY_FFN = (
    2 * 8 * 16         # intermediate 2·h·i = 256
    + 8 * 16           # GELU 8i = 128
    + 16               # bias i
    + 2 * 8 * 16       # output 2·h·i = 256
    + 8                # bias h
    + 4 * 8            # dropout 4h = 32
    + 8                # residual h
    + 5 * 8            # LayerNorm 5h = 40
)
TINY_EMBEDDING = (
    2 * 4 * 10         # dense word lookup 2·e·v = 80
    + 2 * 4 * (4 + 2)  # type/position 2·e·(s+2) = 48
    + 2 * 4            # add 2e
    + 5 * 4            # LayerNorm 5e
    + 4 * 4            # dropout 4e
    + 2 * 8 * 4        # projection e != h: 2·h·e = 64
    + 8                # its bias h
)
TINY_MLM_HEAD = (
    2 * 4 * 10         # tied output embedding 2·e·v = 80
    + 2 * 8 * 4        # dense 2·h·e = 64
    + 4                # bias e
    + 8 * 4            # GELU 8e
    + 5 * 4            # LayerNorm 5e
    + 5 * 10           # softmax 5v
    + 2 * 10           # target 2v
)
TINY_BINARY_HEAD = 2 * 8 * 8 + 8 + 8 * 8 + 2 * 8


def test_hand_count_of_a_tiny_block():
    hp = FlopsHparams(**TINY)
    assert (TINY_ATTENTION, TINY_FFN) == (757, 744)
    assert flops.block_flops_per_token(hp) == 1501
    assert flops.block_flops_per_token(hp.replace(decoder=True)) == 2 * 757 + 744
    assert flops.embedding_flops_per_token(hp) == TINY_EMBEDDING == 244
    assert flops.mlm_head_flops_per_token(hp) == TINY_MLM_HEAD == 270
    assert flops.binary_head_flops_per_token(hp) == TINY_BINARY_HEAD == 216


def test_hand_count_of_tiny_forward_train_and_inference():
    hp = FlopsHparams(**TINY, output_frac=0.25)
    body = 4 * (2 * 1501 + 244)                                       # s·(l·block + emb)
    assert flops.inference_flops(hp) == body + 4 * 216 == 13848
    assert flops.forward_flops(hp, "mlm") == body + 0.25 * 4 * 270 == 13254
    assert flops.train_flops(hp, 3, 5, discriminator=True) == 2 * 3 * 5 * 13848
    assert flops.train_flops(hp, 3, 5) == 2 * 3 * 5 * 13254
    # Sparse lookups drop only the input word lookup (2·e·v per token).
    sparse = hp.replace(sparse_embed_lookup=True)
    assert flops.inference_flops(sparse) == 13848 - 4 * 80


def test_defaults_and_quirk():
    hp = FlopsHparams(1024, 24)
    assert (hp.e, hp.i, hp.heads, hp.kqv, hp.seq_length, hp.vocab_size) == (
        1024, 4096, 16, 1024, 512, 30522)
    assert FlopsHparams(36, 1).heads == 1
    assert FlopsHparams(1024, 24, num_heads=128, head_size=128).kqv == 16384
    for h in (8, 256, 4096):
        assert flops.block_terms(FlopsHparams(h, 1))["attention_output_layer_norm"] == 5
        assert flops.block_terms(FlopsHparams(h, 1))["output_layer_norm"] == 5 * h
    # No projection when E == H.
    assert "projection" not in flops.embedding_terms(FlopsHparams(64, 1))
    with pytest.raises(ValueError):
        FlopsHparams(0, 1)
    with pytest.raises(ValueError):
        flops.forward_flops(FlopsHparams(8, 1), "softmax")


# ---------------------------------------------------------------------------
# Configs of this package
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("size,hparams,paper", [
    ("small", None, "electra_small"),
    ("base", PAPER_BASE, "electra_base"),
    ("large", PAPER_LARGE, "electra_400k"),
])
def test_paper_settings_of_the_presets_give_the_paper_figures(size, hparams, paper):
    run = flops.flops_for_config(PretrainingConfig.from_preset(size, hparams))
    expected = PAPER_MODELS[paper]
    assert [n.name for n in run.networks] == ["discriminator", "generator"]
    assert run.train_flops == pytest.approx(expected.train_flops, rel=1e-12)
    assert run.flops_per_example_step == pytest.approx(expected.flops_per_example_step,
                                                       rel=1e-12)
    assert run.inference_flops == pytest.approx(expected.inference_flops, rel=1e-12)


def test_generator_fraction_batch_and_steps_are_read_from_the_config():
    base = flops.flops_for_config(PretrainingConfig.from_preset("small"))
    gen = base.networks[1].hparams
    assert (gen.hidden_size, gen.num_layers, gen.heads, gen.i, gen.e) == (64, 12, 1, 256, 128)
    wide = flops.flops_for_config(PretrainingConfig.from_preset(
        "small", {"generator_hidden_size": 1.0}))
    assert wide.networks[1].hparams.hidden_size == 256
    assert wide.train_flops > base.train_flops
    longer = flops.flops_for_config(PretrainingConfig.from_preset(
        "small", {"train_batch_size": 64, "num_train_steps": 4000000}))
    assert longer.train_flops == pytest.approx(2 * base.train_flops, rel=1e-12)
    untied = flops.flops_for_config(PretrainingConfig.from_preset(
        "small", {"untied_generator_embeddings": True}))
    assert untied.networks[1].hparams.e == 64


def test_objectives_and_generator_variants():
    small = PretrainingConfig.from_preset("small")
    disc = flops.flops_for_config(small).networks[0].hparams
    mlm = flops.flops_for_config(PretrainingConfig.from_preset(
        "small", {"electra_objective": False}))
    assert [(n.name, n.head) for n in mlm.networks] == [("masked LM", "mlm")]
    assert mlm.train_flops == pytest.approx(flops.train_flops(disc, 128, 1e6), rel=1e-12)
    uniform = flops.flops_for_config(PretrainingConfig.from_preset(
        "small", {"uniform_generator": True}))
    assert [n.name for n in uniform.networks] == ["discriminator"]
    shared = flops.flops_for_config(PretrainingConfig.from_preset(
        "small", {"untied_generator": False}))
    assert shared.networks[1].hparams == disc
    electric = flops.flops_for_config(PretrainingConfig.from_preset(
        "small", {"electric_objective": True, "electra_objective": False}))
    towers = electric.networks[1]
    assert towers.towers == 2 and towers.hparams.output_frac == 1.0
    g = towers.hparams
    s, e, v = 128, 128, 30522
    cloze_head = 2 * e * v + 2 * (2 * 64) * e + e + 8 * e + 5 * e + 5 * v + 2 * v
    assert towers.forward_flops() == pytest.approx(
        2 * s * (12 * flops.block_flops_per_token(g) + flops.embedding_flops_per_token(g))
        + s * cloze_head, rel=1e-12)
    with pytest.raises(ConfigError):
        flops.flops_for_config(PretrainingConfig.from_preset(
            "small", {"electra_objective": False, "uniform_generator": True}))


def test_output_frac_and_sparse_lookup_options():
    config = PretrainingConfig.from_preset("small")
    paper = flops.flops_for_config(config)
    own = flops.flops_for_config(config, output_frac=None)
    assert own.networks[1].hparams.output_frac == 19 / 128
    assert own.train_flops < paper.train_flops
    sparse = flops.flops_for_config(config, sparse_embed_lookup=True)
    saved = 2 * 128 * 1e6 * 2 * 128 * (2 * 128 * 30522)  # both networks, 2·e·v per token
    assert paper.train_flops - sparse.train_flops == pytest.approx(saved, rel=1e-12)


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

def _cli(*args):
    return subprocess.run([sys.executable, "-m", "electra_tf.flops", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)


def _rows(stdout):
    return {line.split()[0]: line.split() for line in stdout.splitlines() if line.strip()}


def test_cli_prints_the_paper_table():
    result = _cli()
    assert result.returncode == 0, result.stderr
    rows = _rows(result.stdout)
    assert rows["model"][:3] == ["model", "train", "FLOPs"]
    for name, total in SPEC_TOTALS.items():
        assert rows[name][1] == total and rows[name][2] == total
    assert rows["electra_small"][3:5] == ["1.01e10", "3.68e9"]
    assert rows["electra_base"][3:5] == ["3.28e11", "1.22e11"]
    assert rows["electra_400k"][3:5] == ["8.69e11", "3.70e11"]
    assert rows["xlnet"][3:5] == ["-", "-"]


def test_cli_selected_models_and_a_config():
    result = _cli("--model=electra_small,bert_base")
    assert result.returncode == 0, result.stderr
    assert set(_rows(result.stdout)) == {"model", "electra_small", "bert_base"}
    result = _cli("--model_size=base", "--hparams=" + str(PAPER_BASE).replace("'", '"'))
    assert result.returncode == 0, result.stderr
    rows = _rows(result.stdout)
    assert rows["discriminator"][1:6] == ["768", "12", "12", "3072", "768"]
    assert rows["generator"][1:6] == ["256", "12", "4", "1024", "768"]
    assert rows["config:base"][1:5] == ["6.42e19", "-", "3.28e11", "1.22e11"]
    assert "electra_small" not in rows


def test_cli_errors():
    result = _cli("--model=electra_tiny")
    assert result.returncode != 0 and "unknown model electra_tiny" in result.stderr
    result = _cli("--model_size=small", '--hparams={"no_such_hparam": 1}')
    assert result.returncode != 0 and "no_such_hparam" in result.stderr
    result = _cli("--model_size=small", "--output_frac=most")
    assert result.returncode != 0 and "--output_frac" in result.stderr
