import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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
