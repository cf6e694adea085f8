"""Pre-training data, the public face: every name of the four parts in one place.

Raw text flows through four parts, each a module of ``electra_tf.data``:

1. :mod:`~electra_tf.data.corpus` turns an input unit (a text, WikiExtractor or
   compressed file, an OpenWebText-style tar archive, a tfds shard) into stripped
   lines with ``None`` at document boundaries.
2. The tokenizer (``electra_tf.tokenization``) turns lines into wordpiece ids.
3. :mod:`~electra_tf.data.packing` packs the ids into length-L examples exactly as
   the original ELECTRA ``ExampleBuilder`` does.
4. :mod:`~electra_tf.data.shards` writes them as ``tf.train.Example`` records into
   ``pretrain_data.tfrecord-<i>-of-<n>`` files and reads them back;
   :mod:`~electra_tf.data.shard_metadata` describes the shards in
   ``pretrain_data.json``.

:mod:`~electra_tf.data.build` drives them over many input units with one or
several processes and summarises the build.
"""

from electra_tf.data.build import (  # noqa: F401
    BuildStats,
    TokenizerSpec,
    build_embedded_dataset,
    build_pretraining_dataset,
    format_summary,
)
from electra_tf.data.corpus import (  # noqa: F401
    EMBEDDED_CORPUS_DIR,
    EMBEDDED_CORPUS_NUM_OUT_FILES,
    INPUT_FORMATS,
    CorpusFile,
    TfdsShard,
    default_corpus_files,
    detect_input_format,
    find_corpus_files,
    tfds_corpus_units,
    unit_rng,
)
from electra_tf.data.errors import PretrainingDataError  # noqa: F401
from electra_tf.data.packing import (  # noqa: F401
    ExampleBuilder,
    PackedExample,
    assign_segments,
    make_example,
)
from electra_tf.data.shard_metadata import METADATA_FILE  # noqa: F401
from electra_tf.data.shards import (  # noqa: F401
    FEATURE_NAMES,
    SHARD_PREFIX,
    ShardWriter,
    existing_shards,
    parse_pretraining_example,
    pretraining_feature_spec,
    read_pretraining_dataset,
    serialize_example,
    shard_name,
)

__all__ = [
    "PretrainingDataError",
    "FEATURE_NAMES",
    "SHARD_PREFIX",
    "METADATA_FILE",
    "EMBEDDED_CORPUS_DIR",
    "EMBEDDED_CORPUS_NUM_OUT_FILES",
    "INPUT_FORMATS",
    "PackedExample",
    "ExampleBuilder",
    "assign_segments",
    "make_example",
    "unit_rng",
    "CorpusFile",
    "TfdsShard",
    "find_corpus_files",
    "default_corpus_files",
    "tfds_corpus_units",
    "detect_input_format",
    "TokenizerSpec",
    "ShardWriter",
    "shard_name",
    "existing_shards",
    "serialize_example",
    "pretraining_feature_spec",
    "parse_pretraining_example",
    "read_pretraining_dataset",
    "BuildStats",
    "build_pretraining_dataset",
    "build_embedded_dataset",
    "format_summary",
]
