"""Recipes: what a pre-training run is made of, resolved once from the config.

Every kind resolves from its config and is recognised back from the names of the checkpoint
its models write; the FLOPs, the run record and the one-line description are those of the
case analyses the recipes replaced; only ``recipes.py`` reads the objective hparams; and a
new kind of run, defined here and nowhere else, trains one real step and is recognised from
its checkpoint.
"""

import dataclasses
import itertools
import json
import re
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_tf import flops
from electra_tf.formats import files, tf1
from electra_tf.config import ConfigError, PretrainingConfig
from electra_tf.networks import build_pretraining_models
from electra_tf.pretraining.recipes import (OBJECTIVE_HPARAMS, Electra, Electric, MaskedLM,
                                            Recipe, SharedElectra, UniformElectra)
from electra_tf.training import run_directory
from pretraining_fixtures import tiny_hparams, write_learnable_records

PACKAGE = Path(__file__).resolve().parents[1] / "electra_tf"
VOCAB = str(PACKAGE / "assets" / "vocab.txt")

# (id, objective hparams, recipe, its one-line description)
KINDS = [
    ("electra", {}, Electra, "discriminator + generator"),
    ("electra_untied", {"untied_generator_embeddings": True}, Electra,
     "discriminator + generator"),
    ("shared", {"untied_generator": False}, SharedElectra, "discriminator + generator"),
    ("uniform", {"uniform_generator": True}, UniformElectra, "discriminator"),
    ("electric", {"electric_objective": True, "electra_objective": False}, Electric,
     "discriminator + two-tower generator"),
    ("two_tower", {"two_tower_generator": True}, Electric,
     "discriminator + two-tower generator"),
    ("mlm", {"electra_objective": False}, MaskedLM, "MLM network"),
]


def tiny(**objective) -> PretrainingConfig:
    return PretrainingConfig.from_preset("small", tiny_hparams(**objective))


@pytest.mark.parametrize("objective,kind,description", [k[1:] for k in KINDS],
                         ids=[k[0] for k in KINDS])
def test_every_kind_resolves_and_is_recognised_from_its_checkpoint(tmp_path, objective, kind,
                                                                   description):
    config = tiny(**objective)
    recipe = Recipe.for_config(config)
    assert type(recipe) is kind and recipe.describe() == description
    models = build_pretraining_models(config)
    assert (models.generator is None) == (kind is UniformElectra)
    assert (models.discriminator is None) == (not recipe.has_discriminator)
    prefix = tf1.save_original_checkpoint(str(tmp_path / "model.ckpt-1"),
                                                  *models.models, global_step=1)
    names = list(files.read_checkpoint_shapes(prefix))
    assert Recipe.from_checkpoint_names(names) is kind
    # The hparams the names show make a config of the same kind (and embedding sharing).
    again = Recipe.for_config(tiny(**kind.checkpoint_hparams(names)))
    assert type(again) is kind
    assert getattr(again, "tied_embeddings", None) == getattr(recipe, "tied_embeddings", None)


def _old_flops_networks(config):
    """flops_for_config's own case analysis before the recipes (name, network, head,
    towers, every position)."""
    rtd = config.electra_objective or config.electric_objective
    networks = [("discriminator", "discriminator", "binary", 1, False)] if rtd else []
    if config.uniform_generator:
        pass
    elif rtd and config.untied_generator:
        if config.two_tower_generator:
            networks.append(("generator (two towers, cloze head)", "generator", "mlm", 2, True))
        else:
            networks.append(("generator", "generator", "mlm", 1, False))
    else:
        networks.append(("masked LM" if not rtd else "generator (full size)", "discriminator",
                         "mlm", 1, False))
    return networks


def _valid_configs():
    """Every combination of the six objective hparams that makes a valid config."""
    for values in itertools.product((False, True), repeat=len(OBJECTIVE_HPARAMS)):
        try:
            yield tiny(**dict(zip(OBJECTIVE_HPARAMS, values)))
        except ConfigError:
            continue


def test_flops_networks_are_those_of_the_old_case_analysis_for_every_combination():
    seen = set()
    for config in _valid_configs():
        old = _old_flops_networks(config)
        if config.electric_objective and not config.two_tower_generator:
            # Electric's energy needs the cloze generator: refused, not a broken first step.
            with pytest.raises(ConfigError, match="no pre-training recipe claims"):
                Recipe.for_config(config)
            continue
        recipe = Recipe.for_config(config)
        seen.add(type(recipe))
        transformers = {"discriminator": config.discriminator_config(),
                        "generator": config.generator_config()}
        assert [(n.name, n.transformer, n.head, n.towers, n.every_position)
                for n in recipe.flops_networks()] == \
            [(name, transformers[t], head, towers, every) for name, t, head, towers, every
             in old], config
        if old:
            assert [n.name for n in flops.flops_for_config(config).networks] == \
                [name for name, *_ in old]
        else:
            with pytest.raises(ConfigError, match="trains nothing"):
                flops.flops_for_config(config)
    assert seen == {Electra, Electric, MaskedLM, SharedElectra, UniformElectra}


@pytest.mark.parametrize("objective", [k[1] for k in KINDS], ids=[k[0] for k in KINDS])
def test_run_record_identity_is_the_objective_hparams_as_given(objective):
    config = tiny(**objective)
    record = run_directory.run_record(config, VOCAB)
    assert record["objective"] == {n: getattr(config, n) for n in OBJECTIVE_HPARAMS}
    # The networks recorded before the recipes: the small generator unless two towers or
    # a uniform generator.
    recorded = {"discriminator"} | (
        set() if config.two_tower_generator or config.uniform_generator else {"generator"})
    assert set(record["model"]) - {"model_size"} == recorded
    assert record["model"]["discriminator"]["hidden_size"] == 32


def test_a_discriminator_without_its_head_is_described_so():
    assert Recipe.for_config(tiny(uniform_generator=True)).describe(False) == \
        "discriminator (no head)"
    assert Recipe.for_config(tiny()).describe(False) == "discriminator (no head) + generator"


def test_only_the_recipes_read_the_objective_hparams():
    reads = re.compile(r"\.(%s)\b" % "|".join(OBJECTIVE_HPARAMS))
    readers = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                     if reads.search(p.read_text()))
    # config.py defines, derives and validates them.
    assert readers == ["config.py", "pretraining/recipes.py"]


# ---------------------------------------------------------------------------
# A new kind of run, defined in this file only: ELECTRA whose fakes come from a learned
# unigram distribution (one logit per word-piece, no context), between the uniform
# generator and a masked LM.
# ---------------------------------------------------------------------------

@dataclasses.dataclass
class UnigramConfig(PretrainingConfig):
    """A config with the new kind's own hparam (as a new kind adds it to configs/*.json)."""

    unigram_generator: bool = True


class UnigramGenerator(keras.Model):
    """Logits ``output_bias`` [V] at every masked slot, whatever the input."""

    def __init__(self, vocab_size: int, **kwargs):
        kwargs.setdefault("name", "unigram_generator")
        super().__init__(**kwargs)
        self.vocab_size = vocab_size

    def build(self, input_shape=None):
        self.output_bias = self.add_weight(shape=(self.vocab_size,), initializer="zeros",
                                           name="output_bias")
        super().build(input_shape)

    def call(self, inputs, training=False):
        slots = tf.zeros_like(inputs["masked_lm_positions"], tf.float32)[..., None]
        return {"logits": slots + self.output_bias}

    def original_variables(self) -> dict:
        return {"unigram_generator/output_bias": self.output_bias}


class UnigramElectra(Recipe):
    kind = "unigram"
    recorded_networks = ("discriminator",)
    described_networks = ("discriminator", "unigram generator")

    @classmethod
    def claims(cls, config):
        return getattr(config, "unigram_generator", False) and config.electra_objective

    @classmethod
    def recognises(cls, names):
        return any(n.startswith("unigram_generator/") for n in names)

    @classmethod
    def checkpoint_hparams(cls, names):
        return {"electra_objective": True, "electric_objective": False,
                "unigram_generator": True}

    def build_networks(self):
        discriminator = self._discriminator()
        generator = UnigramGenerator(self.config.vocab_size)
        generator.build()
        return generator, discriminator  # the masked-LM reading of the base class serves

    def identity(self):
        return {**super().identity(), "unigram_generator": True}

    def flops_networks(self):
        return (self._flops_discriminator(),)  # V additions: no matmul to count


@pytest.fixture
def unigram_registered(monkeypatch):
    monkeypatch.setattr(Recipe, "_registry", list(Recipe._registry))
    Recipe.register(UnigramElectra)
    yield UnigramElectra


def test_a_new_recipe_trains_a_step_and_is_recognised_from_its_checkpoint(tmp_path,
                                                                        unigram_registered):
    from electra_tf.training.pretrain import RunOptions, train
    config = UnigramConfig.from_preset("small", tiny_hparams(num_train_steps=1))
    assert type(Recipe.for_config(config)) is UnigramElectra
    assert type(Recipe.for_config(tiny())) is Electra  # the built-in kinds are untouched
    assert [n.name for n in flops.flops_for_config(config).networks] == ["discriminator"]

    result = train(config, RunOptions(
        model_dir=str(tmp_path / "m"), pretrain_tfrecords=write_learnable_records(
            tmp_path / "records", num_files=1, per_file=16), quiet=True, deterministic=True,
        jit_compile=False))
    [(step, stats)] = result["history"]
    assert step == 1 and set(stats) >= {"mlm_loss", "disc_loss", "disc_accuracy"}
    assert all(np.isfinite(v) for v in stats.values())
    # The unigram starts uniform: its loss is log V, the uniform generator's.
    assert stats["mlm_loss"] == pytest.approx(np.log(config.vocab_size), rel=1e-4)

    names = files.read_checkpoint_shapes(result["exports"]["tf1"])
    assert names["unigram_generator/output_bias"] == [config.vocab_size]
    assert "unigram_generator/output_bias/adam_m" in names
    assert Recipe.from_checkpoint_names(names) is UnigramElectra
    assert Recipe.from_checkpoint_names(
        files.read_checkpoint_shapes(result["exports"]["discriminator"])) is \
        UniformElectra  # the discriminator export alone: a discriminator without generator
    record = json.loads((tmp_path / "m" / run_directory.RUN_RECORD).read_text())
    assert record["objective"]["unigram_generator"] is True
    assert set(record["model"]) == {"model_size", "discriminator"}


def test_what_a_run_is_reads_without_tensorflow():
    """A recipe's kind, names, FLOPs and description (flops, the name layer, format
    detection's light half) import no TensorFlow: ``python -m electra_tf.flops`` answers at
    once. Building networks or running a step imports it."""
    import subprocess
    import sys
    code = ("import sys\n"
            "from electra_tf import checkpoints, flops, formats\n"
            "from electra_tf.config import PretrainingConfig\n"
            "from electra_tf.pretraining.recipes import Recipe\n"
            "config = PretrainingConfig.from_preset('small', {'electric_objective': True, "
            "'electra_objective': False})\n"
            "recipe = Recipe.for_config(config)\n"
            "assert recipe.flops_networks() and recipe.describe()\n"
            "assert flops.flops_for_config(config).flops_per_example_step > 0\n"
            "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
