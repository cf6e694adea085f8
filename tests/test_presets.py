"""Released models by name (issue 24): electra_tf.presets against a local HTTP server.

A fake tiny release is built with this project's own TF1 writer, zipped in Google's
layout (``electra_tiny/electra_tiny.{index,data-*}``, ``vocab.txt``, no config) and served
on 127.0.0.1; it is registered as ``electra_tiny`` for the test only. No network is used.
"""

import hashlib
import http.server
import json
import os
import socket
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import one_error_line

from electra_tf import checkpoints, convert, detect, loading, presets
from electra_tf.checkpoints import CheckpointError
from electra_tf.config import PretrainingConfig
from electra_tf.formats import tf1
from electra_tf.networks import build_pretraining_models
from electra_tf.models import ElectraBackbone, ElectraClassifier

VOCAB = Path(__file__).resolve().parent / "data" / "detect" / "vocab.txt"  # 64 word-pieces
TINY = {"model_size": "small", "vocab_size": 64, "embedding_size": 16, "max_seq_length": 16,
        "generator_hidden_size": 0.5, "do_lower_case": True,
        "model_hparam_overrides": {"hidden_size": 32, "num_hidden_layers": 2,
                                   "num_attention_heads": 2, "intermediate_size": 64,
                                   "max_position_embeddings": 32}}


def tiny_release(**changes) -> presets.Release:
    config = PretrainingConfig.from_preset("small", TINY)
    disc, gen = presets.parameter_counts(presets.expected_shapes(config))
    fields = {"name": "electra_tiny", "hparams": TINY, "discriminator_params": disc,
              "generator_params": gen, "description": "a test release"}
    fields.update(changes)
    return presets.Release(**fields)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """(zip bytes, {original name: array}, models) of a fake tiny release."""
    root = tmp_path_factory.mktemp("release")
    keras.utils.set_random_seed(3)
    config = PretrainingConfig.from_preset("small", TINY)
    models = build_pretraining_models(config)
    rng = np.random.default_rng(3)
    for variable in models.original_variables().values():
        variable.assign(rng.normal(0, 0.2, variable.shape).astype(np.float32))
    directory = root / "electra_tiny"
    tf1.save_original_checkpoint(str(directory / "electra_tiny"), *models.models,
                                         global_step=1234, config=False, vocab_file=str(VOCAB))
    buffer = root / "electra_tiny.zip"
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(directory.iterdir()):
            z.write(path, f"electra_tiny/{path.name}")
    values = {n: v.numpy() for n, v in models.original_variables().items()}
    return buffer.read_bytes(), values, models


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        server = self.server
        server.requests.append(self.path)
        body = server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        mode = server.mode
        if mode == "truncated":  # a complete response of a truncated file
            body = body[: len(body) // 2]
        elif mode == "corrupt":  # same size, damaged bytes in the compressed data
            middle = len(body) // 2
            body = body[:middle] + bytes(b ^ 0xFF for b in body[middle:middle + 64]) + \
                body[middle + 64:]
        self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "cut":  # the connection breaks half-way
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(release):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files = {"/electra_tiny.zip": release[0]}
    httpd.requests, httpd.mode = [], "ok"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there any more


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setitem(presets.RELEASES, "electra_tiny", tiny_release())
    path = tmp_path / "cache"
    monkeypatch.setenv(presets.CACHE_ENV, str(path))
    return path


@pytest.fixture
def online(cache, server, monkeypatch):
    monkeypatch.setenv(presets.URL_ENV, server.url)
    return server


def disc_values(values):
    return {n: v for n, v in values.items()
            if n.startswith(("electra/", "discriminator_predictions/"))}


def gen_values(values):
    """The generator in the MLM-only layout: its encoder under electra/, shared embeddings."""
    out = {n: v for n, v in values.items()
           if n.startswith(("electra/embeddings/", "generator_predictions/"))}
    out.update({"electra/" + n[len("generator/"):]: v for n, v in values.items()
                if n.startswith("generator/")})
    return out


def assert_same(expected: dict, got: dict):
    assert sorted(got) == sorted(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)


def leftovers(cache: Path) -> list:
    return sorted(os.listdir(cache)) if cache.exists() else []


# ---------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------

# keras-hub 0.32's electra_presets.py: parameter counts of its ElectraBackbone presets
# (the encoder, embeddings included, plus keras-hub's [CLS] pooler of H*H + H).
KERAS_HUB_PARAMS = {"electra_small_discriminator": 13_548_800,
                    "electra_small_generator": 13_548_800,
                    "electra_base_discriminator": 109_482_240,
                    "electra_base_generator": 33_576_960,
                    "electra_large_discriminator": 335_141_888,
                    "electra_large_generator": 51_065_344}


def test_every_spelling_names_one_release_and_the_sizes_are_the_released_ones():
    for size in ("small", "base", "large"):
        for side in ("discriminator", "generator"):
            want = presets.Preset(f"electra_{size}", side)
            for name in (f"electra_{size}_{side}", f"electra_{size}_{side}_uncased_en",
                         f"google/electra-{size}-{side}", f"Google/ELECTRA-{size}-{side}"):
                assert presets.lookup(name) == want, name
        assert presets.lookup(f"electra_{size}") == presets.Preset(f"electra_{size}", None)
    assert presets.lookup("electra_huge_discriminator") is None
    assert presets.lookup("google/bert-base-uncased") is None
    # The load check's expectations are spec 7.3's counts, and keras-hub's presets agree.
    for name, release in presets.RELEASES.items():
        shapes = presets.expected_shapes(presets.release_config(release))
        assert presets.parameter_counts(shapes) == (release.discriminator_params,
                                                    release.generator_params), name
        for side in ("discriminator", "generator"):
            encoder = {n: s for n, s in checkpoints.network_values(shapes, side).items()
                       if n.startswith("electra/")}
            h = encoder["electra/encoder/layer_0/attention/self/query/kernel"][0]
            assert presets.parameter_counts(encoder)[0] + h * h + h == \
                KERAS_HUB_PARAMS[f"{name}_{side}"], (name, side)


@pytest.mark.parametrize("hparams", [{}, {"untied_generator_embeddings": True}],
                         ids=["tied", "untied"])
def test_expected_shapes_are_those_of_the_built_models(hparams):
    config = PretrainingConfig.from_preset("small", {**TINY, **hparams})
    built = {n: list(v.shape) for n, v in
             build_pretraining_models(config).original_variables().items()}
    assert presets.expected_shapes(config) == built


def test_cache_directory_and_url_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(presets.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert presets.cache_dir() == str(tmp_path / "xdg" / "electra_tf" / "presets")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert presets.cache_dir() == str(tmp_path / "home" / ".cache" / "electra_tf" / "presets")
    monkeypatch.setenv(presets.CACHE_ENV, str(tmp_path / "mine"))
    assert presets.cache_dir() == str(tmp_path / "mine")
    small = presets.RELEASES["electra_small"]
    monkeypatch.delenv(presets.URL_ENV, raising=False)
    assert presets.archive_url(small) == \
        "https://storage.googleapis.com/electra-data/electra_small.zip"
    monkeypatch.setenv(presets.URL_ENV, "http://127.0.0.1:1/x/")
    assert presets.archive_url(small) == "http://127.0.0.1:1/x/electra_small.zip"


# ---------------------------------------------------------------------------
# Online: download, verify, load; then the cache
# ---------------------------------------------------------------------------

def test_download_verifies_and_loads_then_the_cache_serves_without_server(
        online, cache, release, capfd, monkeypatch):
    data, values, models = release
    weights = loading.read_weights("electra_tiny_discriminator")
    assert_same(disc_values(values), weights.values)
    assert weights.format == "tf1" and weights.global_step == 1234
    assert Path(weights.vocab_file).read_bytes() == VOCAB.read_bytes()
    err = capfd.readouterr().err
    assert f"downloading electra_tiny.zip for preset electra_tiny_discriminator from " \
           f"{online.url}/electra_tiny.zip" in err and "done in" in err, err
    assert "verified" in err and str(cache / "electra_tiny") in err
    manifest = json.loads((cache / "electra_tiny" / presets.MANIFEST).read_text())
    assert manifest["archive"] == {"url": f"{online.url}/electra_tiny.zip", "size": len(data),
                                   "sha256": hashlib.sha256(data).hexdigest()}
    assert manifest["checkpoint"] == "electra_tiny" and manifest["vocab"] == "vocab.txt"
    assert leftovers(cache) == ["electra_tiny"]  # no temporary file or directory left
    assert online.requests == ["/electra_tiny.zip"]

    # The server is gone: every name of both networks loads from the one cached archive.
    monkeypatch.setenv(presets.URL_ENV, closed_port_url())
    assert_same(disc_values(values),
                loading.read_weights("electra_tiny_discriminator_uncased_en").values)
    generator = loading.read_weights("google/electra-tiny-generator")
    assert generator.format == "preset"
    assert_same(gen_values(values), generator.values)
    everything = loading.read_weights("electra_tiny")
    assert_same(values, everything.values)
    assert "downloading" not in capfd.readouterr().err

    # The discriminator (with its head) and the generator as what they are.
    model = loading.load_pretrained("electra_tiny_discriminator", require=("discriminator_head",))
    assert model.has_discriminator_head and model.generator is None
    mlm = loading.load_pretrained("electra_tiny_generator", require=("generator",))
    assert mlm.discriminator is None
    batch = {"input_ids": tf.constant([[2, 10, 11, 4, 12, 3]]),
             "input_mask": tf.ones([1, 6], tf.int32), "segment_ids": tf.zeros([1, 6], tf.int32)}
    for ours, theirs, key in ((model.discriminator, models.discriminator, "logits"),
                              (mlm.generator, models.generator, "logits")):
        inputs = {**batch, "masked_lm_positions": tf.constant([[3, 1]])}
        np.testing.assert_array_equal(ours(inputs)[key].numpy(), theirs(inputs)[key].numpy())

    # keras-hub's spelling on the Keras models: the discriminator's encoder, the generator's.
    backbone = ElectraBackbone.from_preset("electra_tiny_discriminator_uncased_en")
    expected = models.discriminator(batch)["sequence_output"].numpy()
    np.testing.assert_array_equal(backbone(batch)["sequence_output"].numpy(), expected)
    gen_backbone = ElectraBackbone.from_preset("google/electra-tiny-generator")
    assert gen_backbone.hidden_size == 16
    assert_same({n: v for n, v in gen_values(values).items() if n.startswith("electra/")},
                {n: v.numpy() for n, v in gen_backbone.original_variables().items()})
    classifier = ElectraClassifier.from_preset("electra_tiny_discriminator", num_classes=3,
                                               sequence_length=16)
    assert classifier.predict(["the quick brown fox"], verbose=0).shape == (1, 3)


def test_cli_flags_take_preset_names(online, cache, release, capsys, tmp_path, monkeypatch):
    # detect's --checkpoint (scoring's is read by the same inference.load).
    assert detect.main(["detect", "--checkpoint=electra_tiny_discriminator",
                        "--mixed_precision=float32", "the quick brown fox"]) == 0
    assert "the quick brown fox" in capsys.readouterr().out
    # run_finetuning's --init_checkpoint reaches loading.read_weights unchanged.
    from electra_tf import run_finetuning
    from electra_tf.training import finetune
    seen = {}
    monkeypatch.setattr(finetune, "run_finetuning",
                        lambda config, options: seen.setdefault("options", options))
    assert run_finetuning.main(["run_finetuning", f"--data_dir={tmp_path}", "--task_names=rte",
                                "--init_checkpoint=google/electra-tiny-discriminator"]) == 0
    init = seen["options"].init_checkpoint
    assert_same(disc_values(release[1]), loading.read_weights(init).values)
    # convert's --input.
    out = tmp_path / "tf1"
    assert convert.main(["convert", "--input=electra_tiny", f"--output={out}", "--to=tf1"]) == 0
    assert "discriminator + generator" in capsys.readouterr().out
    assert_same(release[1], tf1.read(str(out)).values)


# ---------------------------------------------------------------------------
# Offline, damaged downloads, changed caches, wrong archives
# ---------------------------------------------------------------------------

def test_offline_is_one_line_naming_the_cache_and_a_hand_placed_release_loads(
        cache, release, monkeypatch, capsys):
    url = closed_port_url()
    monkeypatch.setenv(presets.URL_ENV, url)
    with pytest.raises(CheckpointError) as e:
        loading.read_weights("electra_tiny_discriminator")
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith(f"cannot download preset electra_tiny_discriminator from "
                              f"{url}/electra_tiny.zip: ")
    assert f"offline, unzip that archive into {cache} by hand" in message
    assert f"{cache / 'electra_tiny'}/ holding the TF1 checkpoint" in message
    assert "vocab.txt), then run again" in message
    assert leftovers(cache) == []
    # The same through a command line: one error line, exit status 1.
    status = detect.main(["detect", "--checkpoint=electra_tiny_discriminator", "a text"])
    one_error_line(status, capsys.readouterr().err, "cannot download preset", str(cache))

    # Done by hand as the line says: verified on first use, then used offline.
    cache.mkdir(exist_ok=True)
    archive = cache.parent / "electra_tiny.zip"
    archive.write_bytes(release[0])
    with zipfile.ZipFile(archive) as z:
        z.extractall(cache)
    assert_same(disc_values(release[1]),
                loading.read_weights("electra_tiny_discriminator").values)
    manifest = json.loads((cache / "electra_tiny" / presets.MANIFEST).read_text())
    assert manifest["archive"] is None and "electra_tiny.index" in manifest["files"]


@pytest.mark.parametrize("mode,pattern", [
    ("cut", r"(broke off after|is incomplete \()\d+"),
    ("truncated", r"is damaged \("),
    ("corrupt", r"is damaged \("),
])
def test_a_damaged_download_leaves_nothing_that_looks_complete(online, cache, release, mode,
                                                                pattern):
    online.mode = mode
    with pytest.raises(CheckpointError, match=pattern) as e:
        loading.read_weights("electra_tiny_discriminator")
    assert "\n" not in str(e.value) and "nothing was kept" in str(e.value)
    assert leftovers(cache) == []
    online.mode = "ok"  # the next run downloads it again
    assert_same(disc_values(release[1]),
                loading.read_weights("electra_tiny_discriminator").values)


def test_a_cached_file_that_changed_is_refused(online, cache):
    loading.read_weights("electra_tiny")
    data = next((cache / "electra_tiny").glob("electra_tiny.data-*"))
    original = data.read_bytes()
    data.write_bytes(original[:-8])
    with pytest.raises(CheckpointError, match=r"the cached preset electra_tiny in .* changed "
                       r"after it was verified \(electra_tiny\.data-\S+: \d+ bytes, \d+ when "
                       r"verified\): delete .*electra_tiny and run again"):
        loading.read_weights("electra_tiny")
    data.write_bytes(original[:-8] + b"\0" * 8)  # same size, other bytes
    with pytest.raises(CheckpointError, match="its sha256 differs"):
        loading.read_weights("electra_tiny_discriminator")
    data.write_bytes(original)  # the same bytes again, a new modification time
    loading.read_weights("electra_tiny_discriminator")
    manifest = json.loads((cache / "electra_tiny" / presets.MANIFEST).read_text())
    assert manifest["files"][data.name]["mtime_ns"] == data.stat().st_mtime_ns


def test_a_cache_that_cannot_be_written_is_one_line(online, tmp_path, monkeypatch):
    (tmp_path / "a_file").write_text("x")
    monkeypatch.setenv(presets.CACHE_ENV, str(tmp_path / "a_file" / "cache"))
    with pytest.raises(CheckpointError, match=r"^cannot cache preset electra_tiny_generator in "
                       r".*a_file/cache: .*; set \$ELECTRA_TF_PRESETS to a writable directory"):
        loading.read_weights("electra_tiny_generator")


def test_an_archive_that_is_not_the_release_is_refused(online, cache, monkeypatch):
    wider = {**TINY, "model_hparam_overrides": {**TINY["model_hparam_overrides"],
                                                "hidden_size": 48}}
    monkeypatch.setitem(presets.RELEASES, "electra_tiny", tiny_release(hparams=wider))
    with pytest.raises(CheckpointError, match=r"does not hold the released electra_tiny of preset "
                       r"electra_tiny_discriminator \(.*other shape.*query/kernel \[32, 32\] "
                       r"\(expected \[48, 48\]\)"):
        loading.read_weights("electra_tiny_discriminator")
    assert leftovers(cache) == []
    monkeypatch.setitem(presets.RELEASES, "electra_tiny",
                        tiny_release(discriminator_params=123))
    with pytest.raises(CheckpointError, match=r"discriminator parameters, released 123"):
        loading.read_weights("electra_tiny_discriminator")
    assert leftovers(cache) == []


def test_two_downloads_at_once_end_with_one_release(online, cache, release):
    with ThreadPoolExecutor(2) as pool:
        paths = list(pool.map(lambda _: presets.resolve("electra_tiny"), range(2)))
    assert paths == [str(cache / "electra_tiny")] * 2
    assert leftovers(cache) == ["electra_tiny"]
    assert_same(release[1], loading.read_weights("electra_tiny").values)


# ---------------------------------------------------------------------------
# Paths and names
# ---------------------------------------------------------------------------

def test_a_local_path_wins_over_a_preset_name(online, cache, release, tmp_path, monkeypatch):
    doubled = {n: v * 2 for n, v in disc_values(release[1]).items()}
    local = tmp_path / "here" / "electra_tiny_discriminator"
    tf1.write(str(local), doubled, config=TINY, vocab_file=str(VOCAB))
    monkeypatch.chdir(tmp_path / "here")
    assert presets.find("electra_tiny_discriminator") is None
    assert presets.resolve("electra_tiny_discriminator") == "electra_tiny_discriminator"
    assert_same(doubled, loading.read_weights("electra_tiny_discriminator").values)
    assert online.requests == [] and leftovers(cache) == []


def test_an_unknown_name_lists_the_known_presets(cache):
    with pytest.raises(CheckpointError) as e:
        loading.read_weights("electra_tiny_discrimnator")
    assert str(e.value).startswith("checkpoint not found: electra_tiny_discrimnator; known "
                                   "presets: electra_small_discriminator, electra_small_generator")
    assert "electra_tiny_discriminator" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(CheckpointError, match=r"known presets"):
        loading.read_weights("google/electra-small-discrimnator")
    with pytest.raises(CheckpointError) as e:
        loading.read_weights("/no/such/dir/model.ckpt")
    assert str(e.value) == "checkpoint not found: /no/such/dir/model.ckpt"

