"""Data for electra-tf: pre-training example building, TFRecord shards."""

from electra_tf.data.pretraining_data import (  # noqa: F401
    EMBEDDED_CORPUS_DIR,
    FEATURE_NAMES,
    BuildStats,
    ExampleBuilder,
    PackedExample,
    PretrainingDataError,
    ShardWriter,
    TokenizerSpec,
    build_pretraining_dataset,
    default_corpus_files,
    find_corpus_files,
    pretraining_feature_spec,
    read_pretraining_dataset,
    tfds_corpus_units,
)
