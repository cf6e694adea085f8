import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The CPU defaults of precision and XLA come from a speed probe on the machine at hand
# (electra_tf.training.precision_probe); tests of the drivers run under the fixed rule, so
# their results do not depend on the machine (the probe's tests inject its timings).
os.environ.setdefault("ELECTRA_TF_PROBE", "off")

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than ~30 s on 2 CPU cores")


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _float32_keras_policy():
    """Each test starts and ends with Keras' float32 policy: a test that trains in mixed
    precision in-process (the drivers set the global policy) must not change the
    numerics of the tests after it."""
    yield
    if "keras" in sys.modules:
        import keras
        if keras.mixed_precision.global_policy().name != "float32":
            keras.mixed_precision.set_global_policy("float32")


@pytest.fixture(scope="session")
def tiny_pretrained_run(tmp_path_factory):
    """One 3-step pre-training of the tiny model for the whole session (it is deterministic,
    and the tests only read it): ``{"model_dir", "tf1", "discriminator"}`` paths."""
    from pretraining_fixtures import tiny_pretraining_run
    return tiny_pretraining_run(tmp_path_factory.mktemp("tiny_pretrained_run"))


class Finished:
    """What a command left: its exit status and stderr (a CompletedProcess's names)."""

    def __init__(self, returncode, stderr):
        self.returncode, self.stderr = returncode, stderr


def run_in_process(capsys, main, argv):
    """A command's ``main(argv)`` in-process, left as a subprocess would leave it: its exit
    status and stderr. Spares a TensorFlow start-up per run; the SIGTERM handler a command
    sets stays its own (restored afterwards)."""
    import signal  # pylint: disable=g-import-not-at-top
    capsys.readouterr()
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        status = main([str(arg) for arg in argv])
    finally:
        signal.signal(signal.SIGTERM, sigterm)
    return Finished(status, capsys.readouterr().err)


def one_error_line(status, err, *fragments):
    """The one ``error:`` line of a failed command's stderr ``err``; asserts exit status 1,
    no traceback, and that the line holds every fragment."""
    assert status == 1, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err[-3000:]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]
