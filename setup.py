"""electra-tf: ELECTRA pre-training and fine-tuning in TensorFlow 2 / Keras 3."""

from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent
version = next(line.split('"')[1] for line in
               (ROOT / "electra_tf" / "__init__.py").read_text().splitlines()
               if line.startswith("__version__"))

setup(
    name="electra-tf",
    version=version,
    description="A faithful TF2/Keras port of Google's ELECTRA pre-training and fine-tuning.",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    # configs/ (the single source of every default) ships inside the package.
    packages=find_packages(include=["electra_tf", "electra_tf.*"]) + ["electra_tf.configs"],
    package_dir={"electra_tf.configs": "configs"},
    package_data={"electra_tf": ["assets/*", "assets/*/*", "assets/presets/*/*"], "electra_tf.configs": ["*.json"]},
    # Lower bounds are the versions this was tested with.
    install_requires=[
        "tensorflow>=2.21.0",
        "tensorflow-text>=2.21.1",
        "tensorflow-datasets>=4.9.10",
        "importlib_resources>=6.0",  # imported by tensorflow-datasets 4.9.10 without declaring it
        "sentencepiece>=0.2.0",
        "numpy>=2.0",
        "absl-py>=2.1",
        # Hugging Face model.safetensors read/written with numpy (electra_tf.formats.hf), no torch.
        "safetensors>=0.4",
    ],
    # matplotlib only draws the plot of benchmarks/quality_study.py.
    # tensorboard: keras.callbacks.TensorBoard needs it and TensorFlow no longer installs it.
    # keras-hub: writing keras-hub ElectraBackbone presets (reading needs only h5py); the
    # tests of that bridge run against it, so the test extra installs it.
    # pytest-xdist: the README's test command runs the suite on two worker processes.
    extras_require={"test": ["pytest>=8.0", "pytest-xdist>=3.6", "keras-hub>=0.32"],
                    "bench": ["matplotlib>=3.7"],
                    "tensorboard": ["tensorboard"], "keras-hub": ["keras-hub>=0.32"]},
    # The same commands as the scripts beside setup.py (run_pretraining.py, ...) and
    # `python -m electra_tf.<tool>`; electra_tf/cli.py describes their one convention.
    entry_points={"console_scripts": [
        "electra-pretrain = electra_tf.run_pretraining:console_main",
        "electra-finetune = electra_tf.run_finetuning:console_main",
        "electra-build-data = electra_tf.build_pretraining_dataset:console_main",
        "electra-detect = electra_tf.detect:console_main",
        "electra-convert = electra_tf.convert:console_main",
        "electra-export = electra_tf.export:console_main",
        "electra-score = electra_tf.scoring:console_main",
        "electra-build-vocab = electra_tf.build_vocab:console_main",
        "electra-describe = electra_tf.describe:console_main",
        "electra-flops = electra_tf.flops:console_main",
    ]},
)
