"""Tests of the pre-training data parts (corpus readers, packing, shards, the build),
through their public face electra_tf.data.pretraining_data."""

import gzip
import io
import os
import random
import tarfile
import time

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from electra_tf.data import corpus as corpus_lib  # noqa: E402
from electra_tf.data import pretraining_data as pd  # noqa: E402
from electra_tf.data import progress as progress_lib  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "corpus")

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4


class WhitespaceTokenizer(object):
    """Test tokenizer: a line of integers is its own list of ids; any other
    word gets an id from a shared table (deterministic across processes)."""

    special_ids = {"pad": PAD, "unk": UNK, "cls": CLS, "sep": SEP, "mask": MASK}
    vocab_size = 1 << 30

    def encode_batch(self, texts):
        out = []
        for text in texts:
            ids = []
            for word in text.split():
                if word.isdigit():
                    ids.append(int(word))
                else:
                    ids.append(10 + sum(ord(c) for c in word) % 900)
            out.append(ids)
        return out


def whitespace_tokenizer():  # picklable factory (spawned workers import it)
    return WhitespaceTokenizer()


class ScriptedRng(object):
    """Returns scripted values and fails on any unexpected draw."""

    def __init__(self, randoms, randints=()):
        self.randoms = list(randoms)
        self.randints = list(randints)
        self.calls = []

    def random(self):
        assert self.randoms, "unexpected random() draw"
        self.calls.append("random")
        return self.randoms.pop(0)

    def randint(self, a, b):
        assert self.randints, "unexpected randint() draw"
        self.calls.append(("randint", a, b))
        return self.randints.pop(0)


def synthetic_corpus(num_docs, rng, max_line_tokens=40, doc_lines=(1, 30)):
    """Text with document d using only the ids 1000*(d+1) .. 1000*(d+1)+999."""
    docs = []
    for d in range(num_docs):
        base = 1000 * (d + 1)
        lines = []
        for _ in range(rng.randint(*doc_lines)):
            n = rng.randint(1, max_line_tokens)
            lines.append(" ".join(str(base + rng.randint(0, 999)) for _ in range(n)))
        docs.append(lines)
    return docs


def write_docs(path, docs):
    with open(path, "w") as f:
        f.write("\n\n".join("\n".join(lines) for lines in docs) + "\n")


def check_record(ids, mask, segs, max_len):
    """Structural invariants of one example; returns the two segments."""
    assert len(ids) == len(mask) == len(segs) == max_len
    n = sum(mask)
    assert mask == [1] * n + [0] * (max_len - n)
    assert ids[n:] == [0] * (max_len - n)
    assert segs[n:] == [0] * (max_len - n)
    assert ids[0] == CLS
    seps = [i for i in range(n) if ids[i] == SEP]
    assert seps and seps[-1] == n - 1 and len(seps) in (1, 2)
    first = ids[1 : seps[0]]
    second = ids[seps[0] + 1 : n - 1] if len(seps) == 2 else []
    if len(seps) == 2:
        assert second, "a second [SEP] needs a non-empty second segment"
    assert segs[: seps[0] + 1] == [0] * (seps[0] + 1)
    assert segs[seps[0] + 1 : n] == [1] * (n - seps[0] - 1)
    assert first, "first segment is never empty here"
    return first, second


def build_shards(corpus, out, tokenizer=whitespace_tokenizer, **kwargs):
    """build_pretraining_dataset without a progress bar, with the test tokenizer.

    ``corpus`` is a list of input units or a path for find_corpus_files.
    """
    units = corpus if isinstance(corpus, list) else pd.find_corpus_files(str(corpus))
    return pd.build_pretraining_dataset(units, str(out), tokenizer, show_progress=False, **kwargs)


def read_records(paths, max_len):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    spec = {
        name: tf.io.FixedLenFeature([max_len], tf.int64)
        for name in ("input_ids", "input_mask", "segment_ids")
    }
    records = []
    for path in paths:
        for raw in tf.data.TFRecordDataset([path]):
            ex = tf.io.parse_single_example(raw, spec)
            records.append(
                tuple(
                    tuple(int(x) for x in ex[k].numpy())
                    for k in ("input_ids", "input_mask", "segment_ids")
                )
            )
    return records


def read_dir(directory, max_len):
    """The records of every shard in ``directory``, files in name order."""
    return read_records(pd.existing_shards(str(directory)), max_len)


# ---------------------------------------------------------------------------
# Builder.
# ---------------------------------------------------------------------------


def test_hand_worked_two_segment_example_and_draw_order():
    # L = 16, target 16; ft = (16 - 3) // 2 = 6.
    rng = ScriptedRng(
        randoms=[
            0.5,  # >= 0.1: two segments
            0.3,  # sentence b: (c) draw < 0.5 -> first
            0.01,
        ],  # < 0.05: short target next
        randints=[7],
    )
    builder = pd.ExampleBuilder(16, CLS, SEP, rng)
    a = [11, 12, 13, 14, 15]
    b = [21, 22, 23, 24]
    c = [31, 32, 33]
    d = [41, 42, 43, 44, 45, 46]
    assert builder.add_line(a) is None
    assert builder.add_line(b) is None
    assert builder.add_line(c) is None
    ex = builder.add_line(d)  # 18 >= 16 tokens: emit
    # a: first empty -> first. b: 5+4 < 6 fails, draw 0.3 -> first (9).
    # c: 9 >= 6, no draw -> second. d: second non-empty, no draw -> second.
    # truncate: first 9 tokens, second to 16 - 9 - 3 = 4 tokens.
    assert ex.input_ids == [CLS] + a + b + [SEP] + [31, 32, 33, 41] + [SEP]
    assert ex.segment_ids == [0] * 11 + [1] * 5
    assert ex.input_mask == [1] * 16
    assert rng.calls == ["random", "random", "random", ("randint", 5, 16)]
    assert builder.target_length == 7

    # Next example: target 7; a blank line (document end) emits early.
    rng.randoms = [
        0.05,  # < 0.1: single segment (ft = 100000), no more draws
        0.9,
    ]  # no short target
    rng.calls = []
    assert builder.add_line([51, 52, 53]) is None
    assert builder.add_line([61]) is None
    ex = builder.add_line(None)
    assert ex.input_ids == [CLS, 51, 52, 53, 61, SEP] + [0] * 10
    assert ex.segment_ids == [0] * 16
    assert ex.input_mask == [1] * 6 + [0] * 10
    assert rng.calls == ["random", "random"]
    assert builder.target_length == 16
    # A blank line with an empty buffer emits nothing and draws nothing.
    assert builder.add_line(None) is None
    assert rng.calls == ["random", "random"]


def test_segment_rule_short_circuit_and_order_quirk():
    # ft = 6. s1 (2) -> first (a). s2 (5): 7 < 6 fails, second empty, 2 < 6 ->
    # draw 0.7 -> second. s3 (1): 2+1 < 6 -> first by (b) without a draw, after
    # s2 went to the second segment (sentence order not preserved).
    # s4 (9): (b) fails, second non-empty -> no draw -> second.
    rng = ScriptedRng(randoms=[0.7])
    first, second = pd.assign_segments([[1, 2], [3, 4, 5, 6, 7], [8], [9] * 9], 6, rng)
    assert first == [1, 2, 8]
    assert second == [3, 4, 5, 6, 7] + [9] * 9
    assert rng.calls == ["random"]
    # First segment already at the target: no draw at all.
    rng = ScriptedRng(randoms=[])
    first, second = pd.assign_segments([[1] * 6, [2], [3]], 6, rng)
    assert (first, second) == ([1] * 6, [2, 3])


def as_tuple(example):
    """An example as ``read_records`` gives it back: (input_ids, input_mask, segment_ids)."""
    return (tuple(example.input_ids), tuple(example.input_mask), tuple(example.segment_ids))


def test_truncation_first_segment_fills_example():
    # Single segment with one long sentence: first truncated to L - 2, no
    # second segment; leftover tokens are dropped, not carried over.
    rng = ScriptedRng(randoms=[0.0, 0.9, 0.5, 0.9])
    builder = pd.ExampleBuilder(8, CLS, SEP, rng)
    ex = builder.add_line(list(range(100, 120)))
    assert ex.input_ids == [CLS, 100, 101, 102, 103, 104, 105, SEP]
    assert ex.segment_ids == [0] * 8
    # The leftover 106..119 is gone: the next example starts with the next line's tokens.
    # Two segments where the second is truncated to nothing: ft = 2;
    # s1 (5) -> first (a); s2 -> second (no draw: 5 >= ft); second keeps
    # max(0, 8 - 5 - 3) = 0 tokens, so there is a single [SEP].
    assert builder.add_line([1, 2, 3, 4, 5]) is None
    ex = builder.add_line(list(range(200, 210)))
    assert ex.input_ids == [CLS, 1, 2, 3, 4, 5, SEP, 0]
    assert ex.segment_ids == [0] * 8
    assert ex.input_mask == [1] * 7 + [0]
    assert rng.calls == ["random"] * 4


def test_builder_rates_and_lengths():
    # One-token lines make the rates observable from the output: a buffer
    # holds exactly `target` tokens, a two-segment example always has a
    # non-empty second segment, and a single-segment one never has.
    max_len = 32
    rng = random.Random(1234)
    builder = pd.ExampleBuilder(max_len, CLS, SEP, rng)
    examples = []
    line = [500]
    while len(examples) < 40000:
        ex = builder.add_line(line)
        if ex is not None:
            examples.append(ex)
    n = len(examples)
    singles = sum(1 for ex in examples if 1 not in ex.segment_ids)
    lengths = [sum(ex.input_mask) for ex in examples]
    short = sum(1 for length in lengths if length < max_len)
    # Short target t ~ U{5..L}; a short example has t + 2 (single) or t + 3
    # tokens, so length < L needs t < L - 2 (single) or t < L - 3.
    expected_short = 0.05 * (0.1 * (max_len - 7) + 0.9 * (max_len - 8)) / (max_len - 4)
    # Tolerances: ~5 standard deviations at n = 40000.
    assert abs(singles / n - 0.1) < 0.0075, singles / n
    assert abs(short / n - expected_short) < 0.005, short / n
    assert min(lengths) >= 5 + 2
    assert max(lengths) == max_len
    # Inclusive randint(5, L): targets L-3 .. L occur among short draws, and
    # the smallest target 5 does too (with this many examples).
    assert min(lengths) <= 5 + 3


def test_builder_invariants_and_document_boundaries(tmp_path):
    rng = random.Random(7)
    docs = synthetic_corpus(300, rng)
    corpus = tmp_path / "corpus.txt"
    write_docs(corpus, docs)
    out = tmp_path / "out"
    stats = build_shards(corpus, out, max_seq_length=64, num_out_files=3, seed=5)
    files = sorted(os.listdir(out))
    assert files == [pd.METADATA_FILE] + ["pretrain_data.tfrecord-%d-of-3" % i for i in range(3)]
    records = read_records(pd.existing_shards(str(out)), 64)
    assert len(records) == stats.examples > 100
    assert stats.documents == 300
    assert stats.tokens == sum(len(line.split()) for d in docs for line in d)
    two_segment = 0
    for ids, mask, segs in records:
        first, second = check_record(list(ids), list(mask), list(segs), 64)
        doc_ids = {t // 1000 for t in first + second}
        assert len(doc_ids) == 1, "example spans documents %s" % doc_ids
        two_segment += bool(second)
    assert 0 < two_segment < len(records)


def test_output_matches_direct_builder_and_reader(tmp_path):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    rng = random.Random(3)
    docs = synthetic_corpus(40, rng)
    corpus = tmp_path / "c.txt"
    write_docs(corpus, docs)
    # Expected: one builder with the unit's RNG, fed line by line.
    builder = pd.ExampleBuilder(32, CLS, SEP, pd.unit_rng(11, 0))
    expected = []
    for d, lines in enumerate(docs):
        for line in lines:
            ex = builder.add_line([int(t) for t in line.split()])
            if ex:
                expected.append(as_tuple(ex))
        ex = builder.add_line(None)
        if ex:
            expected.append(as_tuple(ex))
    out = tmp_path / "out"
    build_shards(corpus, out, max_seq_length=32, num_out_files=1, seed=11)
    records = read_records([str(out / "pretrain_data.tfrecord-0-of-1")], 32)
    assert records == expected  # one shard: same order as built
    ds = pd.read_pretraining_dataset(str(out), 32)
    first = next(iter(ds))
    assert sorted(first) == ["input_ids", "input_mask", "segment_ids"]
    assert first["input_ids"].dtype == tf.int32
    assert tuple(first["input_ids"].numpy()) == expected[0][0]
    assert len(list(ds)) == len(expected)


def test_seed_changes_output_and_is_reproducible(tmp_path):
    docs = synthetic_corpus(30, random.Random(0))
    corpus = tmp_path / "c.txt"
    write_docs(corpus, docs)

    def build(seed, name):
        build_shards(corpus, tmp_path / name, max_seq_length=32, num_out_files=2, seed=seed)
        return read_dir(tmp_path / name, 32)

    first = build(1, "a")
    assert first == build(1, "b")
    assert first != build(2, "c")


def test_multiprocess_equals_single_process(tmp_path):
    rng = random.Random(9)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(5):
        write_docs(corpus / ("part%d.txt" % i), synthetic_corpus(8, rng))
    units = pd.find_corpus_files(str(corpus))

    def build(processes, name):
        stats = build_shards(
            units,
            tmp_path / name,
            max_seq_length=32,
            num_out_files=4,
            num_processes=processes,
            seed=3,
        )
        assert stats.processes == processes
        return stats, read_dir(tmp_path / name, 32)

    stats1, single = build(1, "p1")
    stats2, multi = build(2, "p2")
    assert len(single) > 20
    assert sorted(single) == sorted(multi)
    assert (stats1.examples, stats1.documents, stats1.tokens) == (
        stats2.examples,
        stats2.documents,
        stats2.tokens,
    )
    assert not [f for f in os.listdir(tmp_path / "p2") if f.startswith(".")]


def test_worker_user_error_is_reported_and_cleaned_up(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_docs(corpus / "a.txt", [["1 2 3"]])
    inner = tmp_path / "inner.tar"
    with tarfile.open(inner, "w") as tar:
        tar.add(str(corpus / "a.txt"), arcname="a.txt")
    with tarfile.open(corpus / "b.tar", "w") as tar:
        tar.add(str(inner), arcname="inner.tar.gz")
    out = tmp_path / "out"
    with pytest.raises(pd.PretrainingDataError, match="extract the outer"):
        build_shards(corpus, out, max_seq_length=16, num_out_files=2, num_processes=2)
    assert os.listdir(out) == []


def test_refuses_existing_shards_without_overwrite(tmp_path):
    corpus = os.path.join(FIXTURES, "plain.txt")
    out = tmp_path / "out"
    units = pd.find_corpus_files(corpus)
    build_shards(units, out, max_seq_length=16, num_out_files=3)
    (out / "keep.txt").write_text("not ours")
    with pytest.raises(pd.PretrainingDataError, match="--overwrite"):
        build_shards(units, out, max_seq_length=16, num_out_files=2)
    assert len(pd.existing_shards(str(out))) == 3  # untouched
    build_shards(units, out, max_seq_length=16, num_out_files=2, overwrite=True)
    assert sorted(os.listdir(out)) == [
        "keep.txt",
        pd.METADATA_FILE,
        "pretrain_data.tfrecord-0-of-2",
        "pretrain_data.tfrecord-1-of-2",
    ]


def test_failed_build_leaves_no_shards(tmp_path):
    class Boom(Exception):
        pass

    class FailingTokenizer(WhitespaceTokenizer):
        calls = 0

        def encode_batch(self, texts):
            FailingTokenizer.calls += 1
            if FailingTokenizer.calls > 1:
                raise Boom()
            return super().encode_batch(texts)

    corpus = tmp_path / "c"
    corpus.mkdir()
    write_docs(corpus / "a.txt", [["1 2 3"]])
    write_docs(corpus / "b.txt", [["4 5 6"]])
    out = tmp_path / "out"
    with pytest.raises(Boom):
        build_shards(corpus, out, FailingTokenizer, max_seq_length=16, num_out_files=2)
    assert os.listdir(out) == []


# ---------------------------------------------------------------------------
# Readers.
# ---------------------------------------------------------------------------


def items_of(path, input_format="auto", blanks=True):
    counters = corpus_lib.ReadCounters()
    unit = pd.find_corpus_files(str(path))[0]
    items = list(unit.iter_items(input_format, blanks, counters, 0))
    return items, counters


def test_text_reader_blank_lines():
    path = os.path.join(FIXTURES, "plain.txt")
    items, counters = items_of(path)
    doc1 = ["The first document starts here.", "It has a second line about rivers and hills."]
    doc2 = ["The second document is short.", "It ends after this line."]
    assert items == doc1 + [None] + doc2[:1] + [None] + doc2[1:] + [None]
    assert counters.lines == 6 and counters.bad_utf8_lines == 0
    assert counters.bytes_read == os.path.getsize(path)
    items, _ = items_of(path, blanks=False)
    assert items == doc1 + doc2 + [None]


def test_wikiextractor_reader_and_gzip(tmp_path):
    path = os.path.join(FIXTURES, "wiki_sample.txt")
    expected = [
        None,
        "Alpha is the first letter of a made-up alphabet used in this test.",
        "It is followed by a second paragraph.",
        None,
        None,
        "Beta comes after alpha.",
        None,
        None,
    ]
    assert pd.detect_input_format(path) == "wikiextractor"
    items, _ = items_of(path)
    assert items == expected
    gz = tmp_path / "wiki_00.gz"
    with open(path, "rb") as f:
        gz.write_bytes(gzip.compress(f.read()))
    assert pd.detect_input_format(str(gz)) == "wikiextractor"
    items, counters = items_of(gz)
    assert items == expected
    assert counters.bytes_read == os.path.getsize(gz)
    # Forced "text": tags and titles become ordinary lines.
    items, _ = items_of(path, input_format="text")
    assert items[0].startswith("<doc") and "Alpha" in items


def test_wikiextractor_documents_are_separate_examples(tmp_path):
    lines = []
    for d in range(6):
        lines.append('<doc id="%d" url="u" title="T%d">' % (d, d))
        lines.append("999999")  # the title line: dropped
        lines.append("")
        for _ in range(3):
            lines.append(" ".join(str(1000 * (d + 1) + k) for k in range(20)))
        lines.append("</doc>")
    corpus = tmp_path / "wiki_01"
    corpus.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    stats = build_shards(corpus, out, max_seq_length=128, num_out_files=1)
    records = read_records([str(out / "pretrain_data.tfrecord-0-of-1")], 128)
    assert stats.documents == 6 and len(records) == 6
    for ids, mask, segs in records:
        first, second = check_record(list(ids), list(mask), list(segs), 128)
        assert 999999 not in first + second
        assert len({t // 1000 for t in first + second}) == 1


def test_openwebtext_archive_reader(tmp_path):
    texts = {"a.txt": b"one\n\ntwo\n", "b.txt": b"three\n", "c.txt": b"\nfour\n"}
    archive = tmp_path / "urlsf_subset00-1_data.xz"
    with tarfile.open(archive, "w:xz") as tar:
        for name, data in texts.items():
            info = tarfile.TarInfo("sub/" + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert pd.detect_input_format(str(archive)) == "openwebtext"
    items, counters = items_of(archive)
    docs, cur = [], []
    for item in items:
        if item is None:
            docs.append(cur)
            cur = []
        else:
            cur.append(item)
    assert sorted(docs) == sorted([["one", "two"], ["three"], ["four"]])
    assert counters.bytes_read == os.path.getsize(archive)
    # The member order is shuffled deterministically per seed.
    again, _ = items_of(archive)
    assert again == items
    # An archive of archives is refused with a hint.
    outer = tmp_path / "openwebtext.tar"
    with tarfile.open(outer, "w") as tar:
        tar.add(str(archive), arcname="openwebtext/urlsf_subset00-1_data.xz")
    with pytest.raises(pd.PretrainingDataError, match="extract the outer"):
        items_of(outer)


def test_invalid_utf8_is_counted(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"caf\xe9 au lait\nfine line\n\xff\xfe broken\n")
    items, counters = items_of(path)
    assert counters.bad_utf8_lines == 2
    assert items[0] == "caf\ufffd au lait"
    stats = build_shards(path, tmp_path / "out", max_seq_length=16, num_out_files=1)
    assert stats.bad_utf8_lines == 2 and stats.lines == 3
    assert any("invalid UTF-8: 2" in line for line in pd.format_summary(stats))


def test_find_corpus_files_and_empty_inputs(tmp_path):
    (tmp_path / "AA").mkdir()
    (tmp_path / "AA" / "wiki_01").write_text("1 2 3\n")
    (tmp_path / "AA" / "wiki_00").write_text("")
    (tmp_path / ".hidden").write_text("x\n")
    (tmp_path / "b.txt").write_text("4 5\n")
    units = pd.find_corpus_files(str(tmp_path))
    assert [os.path.relpath(u.path, tmp_path) for u in units] == [
        "AA/wiki_00",
        "AA/wiki_01",
        "b.txt",
    ]
    assert [u.index for u in units] == [0, 1, 2]
    both = pd.find_corpus_files("%s,%s" % (tmp_path / "b.txt", tmp_path / "AA" / "*"))
    assert [u.path for u in both] == [u.path for u in units]
    with pytest.raises(pd.PretrainingDataError, match="no input files found at '.*nothing'"):
        pd.find_corpus_files(str(tmp_path / "nothing"))
    stream = io.StringIO()
    stats = build_shards(units, tmp_path / "out", max_seq_length=16, num_out_files=1, stream=stream)
    assert "empty input file: %s" % (tmp_path / "AA" / "wiki_00") in (stream.getvalue())
    assert stats.examples == 2
    with pytest.raises(
        pd.PretrainingDataError, match=r"produced no examples \(1 file, all empty or whitespace\)"
    ):
        build_shards(units[:1], tmp_path / "out2")


def test_unwritable_output_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    units = pd.find_corpus_files(os.path.join(FIXTURES, "plain.txt"))
    with pytest.raises(pd.PretrainingDataError, match="cannot create output directory"):
        build_shards(units, blocker / "out")
    with pytest.raises(pd.PretrainingDataError, match="not a directory"):
        build_shards(units, blocker)


def test_embedded_corpus_is_present():
    units = pd.default_corpus_files()
    assert len(units) >= 2
    assert all(u.path.endswith(".gz") for u in units)
    total = 0
    for unit in units:
        with gzip.open(unit.path, "rb") as f:
            data = f.read()
        total += len(data)
        assert data.startswith(b"<doc ")
    assert 2e6 < total < 5e6
    assert os.path.isfile(os.path.join(pd.EMBEDDED_CORPUS_DIR, "NOTICE.md"))


# ---------------------------------------------------------------------------
# tensorflow-datasets input.
# ---------------------------------------------------------------------------


def test_tfds_not_prepared_fails_fast(tmp_path):
    start = time.monotonic()
    with pytest.raises(pd.PretrainingDataError, match="not prepared"):
        pd.tfds_corpus_units("wikipedia/20230601.en", data_dir=str(tmp_path))
    assert time.monotonic() - start < 30
    assert not any(tmp_path.iterdir())  # nothing downloaded or created


def test_tfds_prepared_corpus(tmp_path):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

    texts = ["%d %d\n\n%d" % (1000 * d + 1, 1000 * d + 2, 1000 * d + 3) for d in range(1, 6)]
    builder = tfds.dataset_builders.TfDataBuilder(
        name="tiny_text_corpus",
        config="default",
        version="1.0.0",
        data_dir=str(tmp_path),
        split_datasets={"train": tf.data.Dataset.from_tensor_slices({"text": texts})},
        features=tfds.features.FeaturesDict({"text": tfds.features.Text()}),
    )
    builder.download_and_prepare()
    units = pd.tfds_corpus_units("tiny_text_corpus", "train", str(tmp_path))
    with pytest.raises(pd.PretrainingDataError, match="no feature 'body'"):
        pd.tfds_corpus_units("tiny_text_corpus", "train", str(tmp_path), "body")
    stats = build_shards(units, tmp_path / "out", max_seq_length=16, num_out_files=1)
    assert stats.documents == 5 and stats.examples == 5 and stats.tokens == 15
    records = read_records(pd.existing_shards(str(tmp_path / "out")), 16)
    for ids, _, _ in records:
        assert len({t // 1000 for t in ids if t > 4}) == 1


# ---------------------------------------------------------------------------
# Progress helper.
# ---------------------------------------------------------------------------


def test_progress_render_and_log_lines():
    stream = io.StringIO()
    bar = progress_lib.Progress(total=1000, unit="B", desc="x", stream=stream, log_interval=0.0)
    bar._start -= 10.0  # pylint: disable=protected-access  (slow start-up)
    bar.update(100)
    assert bar.eta() is None and "ETA ?" in bar.render()  # no rate yet
    assert stream.getvalue() == ""  # no line without a rate
    bar._first_time -= 2.0  # pylint: disable=protected-access
    bar.update(150)
    line = bar.render()
    assert "25%" in line and "ETA" in line and "250 B/1.0 kB" in line
    # Rate since the first update (150 B in 2 s), not since the start: 750 B
    # left at 75 B/s.
    assert 9.0 < bar.eta() < 10.5
    bar.close()
    out = stream.getvalue().splitlines()
    assert out and "25%" in out[0] and out[-1].startswith("x [")
    assert progress_lib.format_duration(3725) == "1h02m"
    assert progress_lib.format_bytes(3.1e6) == "3.1 MB"
