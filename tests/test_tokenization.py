"""Tests for electra_tf.tokenization and electra_tf.build_vocab.

The golden cases below were derived by hand from the BERT tokenizer rules
(reference doc section 5.1) and, for the bundled vocab, from the line numbers
of `electra_tf/assets/vocab.txt` (id = line number - 1); they were not
produced by running the code under test.
"""

import os
import random
import subprocess
import sys
import unicodedata

import pytest

from electra_tf import build_vocab
from electra_tf import tokenization

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DATA = os.path.join(HERE, "data", "tokenization")
TINY_VOCAB = os.path.join(DATA, "tiny_vocab.txt")
MIXED = os.path.join(DATA, "mixed.txt")

MODES = [(True, True), (True, False), (False, False)]


def _mixed_lines():
    with open(MIXED, encoding="utf-8", newline="") as f:
        text = f.read()
    # Split on "\n" only: some lines hold \x0b, \x0c, \x1c, \x85, U+2028 ...
    return text.split("\n")[:-1]


def _english_lines(max_chars=20000):
    """A few KB of English: the Wikipedia lines of the mixed fixture."""
    lines, total = [], 0
    for line in _mixed_lines()[:140]:
        lines.append(line)
        total += len(line)
        if total >= max_chars:
            break
    return lines


_TOKENIZER_CLASSES = {"full": tokenization.FullTokenizer, "fast": tokenization.FastTokenizer}
_TOKENIZERS = {}


def _tokenizer(kind, vocab=TINY_VOCAB, lower=True, strip=True):
    key = (kind, vocab, lower, strip)
    if key not in _TOKENIZERS:
        cls = _TOKENIZER_CLASSES[kind]
        _TOKENIZERS[key] = cls(vocab, do_lower_case=lower, strip_accents=strip)
    return _TOKENIZERS[key]


# ---------------------------------------------------------------------------
# Vocab loading and errors.
# ---------------------------------------------------------------------------


def test_tiny_vocab_loading():
    tok = tokenization.FullTokenizer(TINY_VOCAB)
    assert tok.vocab_size == 47
    assert tok.vocab["the"] == 5 and tok.vocab["stra\u00dfe"] == 46
    assert tok.inv_vocab[7] == "##aff"
    assert tok.special_ids == {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}


def test_bundled_vocab():
    path = tokenization.default_vocab_file()
    assert os.path.isfile(path)
    assert os.path.dirname(path) == os.path.join(
        os.path.dirname(os.path.abspath(tokenization.__file__)), "assets"
    )
    tok = _tokenizer("full", vocab=path)
    assert tok.vocab_size == 30522
    assert tok.special_ids == {"pad": 0, "unk": 100, "cls": 101, "sep": 102, "mask": 103}
    assert tok.convert_ids_to_tokens([0, 100, 101, 102, 103]) == [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
    ]
    assert tok.mask_id == 103 and tok.pad_id == 0


def test_vocab_lines_are_stripped_and_indexed(tmp_path):
    path = tmp_path / "v.txt"
    path.write_bytes(b"[PAD]\r\n  [UNK] \n[CLS]\n[SEP]\n[MASK]\nfoo\t\nbar")
    tok = tokenization.FullTokenizer(str(path))
    assert tok.vocab_size == 7
    assert tok.vocab["[UNK]"] == 1 and tok.vocab["foo"] == 5
    assert tok.vocab["bar"] == 6  # last line without a newline still counts


@pytest.mark.parametrize("kind", ["full", "fast"])
def test_missing_special_tokens(tmp_path, kind):
    path = tmp_path / "bad_vocab.txt"
    path.write_text("[PAD]\n[UNK]\nthe\n", encoding="utf-8")
    with pytest.raises(ValueError) as err:
        _TOKENIZER_CLASSES[kind](str(path))
    msg = str(err.value)
    assert str(path) in msg
    for token in ("[CLS]", "[SEP]", "[MASK]"):
        assert token in msg
    assert "[PAD]," not in msg  # present tokens are not reported missing


def test_missing_vocab_file(tmp_path):
    path = str(tmp_path / "nope" / "vocab.txt")
    with pytest.raises(FileNotFoundError, match="nope"):
        tokenization.FullTokenizer(path)
    with pytest.raises(FileNotFoundError, match="nope"):
        tokenization.load_tokenizer(vocab_file=path)


# ---------------------------------------------------------------------------
# Golden cases (tiny vocab), run through both tokenizers.
# ---------------------------------------------------------------------------

UNK = "[UNK]"

GOLDEN_LOWER_STRIP = [
    ("unaffable", ["un", "##aff", "##able"]),
    ("UNAFFABLE", ["un", "##aff", "##able"]),
    ("wanted", ["want", "##ed"]),  # longest match: "want", not "wa"
    ("unaffablex", [UNK]),  # no partial pieces: the whole word is [UNK]
    ("running.", ["run", "##ning", "."]),
    ("Hello, World!", ["hello", ",", UNK, "!"]),
    ("$^`", ["$", "^", "`"]),  # ASCII symbols outside Unicode P* count
    ("a$b", ["a", "$", "b"]),
    ("aab", ["a", "##a", "##b"]),
    ("\u4e2d\u6587", ["\u4e2d", "\u6587"]),
    ("a\u4e2db", ["a", "\u4e2d", "b"]),
    ("\u00abthe\u00bb\u2014the\u00bf", ["\u00ab", "the", "\u00bb", "\u2014", "the", "\u00bf"]),
    ("Caf\u00e9", ["cafe"]),
    ("CAF\u00c9", ["cafe"]),
    ("Cafe\u0301", ["cafe"]),
    ("the\tthe\nthe\rthe\u00a0the\u3000the\u2028the", ["the"] * 7),
    ("un\x00aff\ufffdable", ["un", "##aff", "##able"]),
    ("un\u00adaff\u200dable\u200b", ["un", "##aff", "##able"]),  # Cf dropped
    ("the\x0bthe", [UNK]),  # VT is a control char: dropped, not a space
    ("\x07\x1b\x7f", []),
    ("", []),
    ("  \t \n ", []),
    # Final sigma: lower-casing sees the whole word before punctuation split.
    ("\u0391\u03a3", ["\u03b1", "##\u03c2"]),
    ("\u0391\u03a3\u0391", ["\u03b1", "##\u03c3", "##\u03b1"]),
    ("\u0391\u03a3 \u0391", ["\u03b1", "##\u03c2", "\u03b1"]),
    ("\u0391\u03a3.\u0391", ["\u03b1", "##\u03c3", ".", "\u03b1"]),
    # No compatibility normalisation or case folding (the vocab holds "abc",
    # "fine", "xii" and "strasse", which NFKC case folding would produce).
    ("\U0001d400\U0001d401\U0001d402", [UNK]),
    ("\uff21\uff22\uff23", [UNK]),
    ("\ufb01ne", [UNK]),
    ("\u216b", [UNK]),
    ("Stra\u00dfe", ["stra\u00dfe"]),
    ("\u0130", ["i"]),  # lower() gives i + U+0307, which accent stripping drops
    ("a" * 200, ["a"] + ["##a"] * 199),
    ("a" * 201, [UNK]),
    ("b " + "a" * 201 + " b", ["b", UNK, "b"]),
    ("\u00c9" * 201, [UNK]),
]

GOLDEN_LOWER_KEEP_ACCENTS = [
    ("Caf\u00e9", ["caf\u00e9"]),
    ("Cafe\u0301", [UNK]),  # "cafe" + "##\u0301" is not in the vocab
    ("\u00c9" * 150, ["\u00e9"] + ["##\u00e9"] * 149),  # 300 bytes
    ("\u00e9" * 200, ["\u00e9"] + ["##\u00e9"] * 199),
    ("\u00e9" * 201, [UNK]),
    ("\u0130", [UNK]),
    ("Stra\u00dfe", ["stra\u00dfe"]),
    ("UNAFFABLE, the!", ["un", "##aff", "##able", ",", "the", "!"]),
]

GOLDEN_NO_LOWER = [
    ("Hello", ["Hello"]),
    ("hello", ["hello"]),
    ("HELLO", [UNK]),
    ("Caf\u00e9", [UNK]),
    ("caf\u00e9", ["caf\u00e9"]),
    ("unaffable", ["un", "##aff", "##able"]),
    ("UNAFFABLE", [UNK]),
    ("\u0391\u03a3", [UNK]),
    ("Hello\x00,\u00a0hello!", ["Hello", ",", "hello", "!"]),
]


@pytest.mark.parametrize("kind", ["full", "fast"])
def test_golden_lower_strip(kind):
    tok = _tokenizer(kind, lower=True, strip=True)
    for text, expected in GOLDEN_LOWER_STRIP:
        assert tok.tokenize(text) == expected, ascii(text)
        assert tok.encode(text) == tok.convert_tokens_to_ids(expected), ascii(text)


@pytest.mark.parametrize("kind", ["full", "fast"])
def test_golden_lower_keep_accents(kind):
    tok = _tokenizer(kind, lower=True, strip=False)
    for text, expected in GOLDEN_LOWER_KEEP_ACCENTS:
        assert tok.tokenize(text) == expected, ascii(text)


@pytest.mark.parametrize("kind", ["full", "fast"])
@pytest.mark.parametrize("strip", [False, True])
def test_golden_no_lower(kind, strip):
    # strip_accents only ever applies together with lower-casing.
    tok = _tokenizer(kind, lower=False, strip=strip)
    for text, expected in GOLDEN_NO_LOWER:
        assert tok.tokenize(text) == expected, ascii(text)


def test_basic_tokenizer_golden():
    basic = tokenization.BasicTokenizer(do_lower_case=True)
    assert basic.tokenize(" \tHeLLo!How  \n Are yoU?  ") == ["hello", "!", "how", "are", "you", "?"]
    assert basic.tokenize("H\u00e4ll\u00f3!how  \n Are yoU?  ") == [
        "hallo",
        "!",
        "how",
        "are",
        "you",
        "?",
    ]
    assert basic.tokenize("ah\u535a\u63a8zz") == ["ah", "\u535a", "\u63a8", "zz"]
    assert tokenization.BasicTokenizer(do_lower_case=False).tokenize("H\u00e4ll\u00f3!") == [
        "H\u00e4ll\u00f3",
        "!",
    ]


def test_bytes_input_decoded_ignoring_errors():
    tok = _tokenizer("full")
    assert tok.tokenize(b"Caf\xc3\xa9 \xff!") == ["cafe", "!"]
    assert _tokenizer("fast").encode_batch([b"Caf\xc3\xa9 \xff!"]) == [[25, 17]]


# ---------------------------------------------------------------------------
# Bundled vocab, end to end (ids read off the vocab file's line numbers).
# ---------------------------------------------------------------------------

BUNDLED_GOLDEN = [
    ("Hello, World!", [7592, 1010, 2088, 999]),
    ("unaffable", [14477, 20961, 3468]),  # una ##ffa ##ble
    ("[MASK]", [1031, 7308, 1033]),  # "[", "mask", "]": never a special id
    ("\u4e2d\u6587", [1746, 1861]),
    ("Caf\u00e9 na\u00efve", [7668, 15743]),
    ("Stra\u00dfe", [2358, 27807]),  # st ##raße
    ("", []),
]


@pytest.mark.parametrize("kind", ["full", "fast"])
def test_bundled_vocab_golden_ids(kind):
    tok = _tokenizer(kind, vocab=tokenization.default_vocab_file())
    texts = [t for t, _ in BUNDLED_GOLDEN]
    expected = [ids for _, ids in BUNDLED_GOLDEN]
    assert tok.encode_batch(texts) == expected
    assert [tok.encode(t) for t in texts] == expected
    assert tok.tokenize("unaffable") == ["una", "##ffa", "##ble"]
    assert tok.convert_ids_to_tokens([14477, 20961, 3468]) == ["una", "##ffa", "##ble"]


# ---------------------------------------------------------------------------
# Fast tokenizer == faithful tokenizer.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("lower,strip", MODES)
def test_fast_matches_full_on_mixed_fixture(lower, strip):
    lines = _mixed_lines()
    assert len(lines) == 198
    vocab = tokenization.default_vocab_file()
    full = _tokenizer("full", vocab, lower, strip)
    fast = _tokenizer("fast", vocab, lower, strip)
    expected = full.encode_batch(lines)
    got = fast.encode_batch(lines)
    bad = [ascii(lines[i][:80]) for i in range(len(lines)) if expected[i] != got[i]]
    assert not bad, bad
    # Small batches exercise the chunking.
    fast_small = tokenization.FastTokenizer(vocab, lower, strip, batch_size=7)
    assert fast_small.encode_batch(lines) == expected


def _sweep_code_points():
    """All BMP code points but surrogates, plus a sample of astral ones."""
    cps = [cp for cp in range(0x10000) if not 0xD800 <= cp <= 0xDFFF]
    cps += list(range(0x10000, 0x110000, 97))
    cps += [
        0x1D400,
        0x1F600,
        0x20000,
        0x2A6DF,
        0x2A6E0,
        0x2CEAF,
        0x2CEB0,
        0x2F800,
        0x2FA1F,
        0xE0001,
        0xE0100,
    ]
    return cps


@pytest.mark.parametrize("lower,strip", [(True, True), (False, False)])
def test_fast_matches_full_on_every_code_point(lower, strip):
    vocab = tokenization.default_vocab_file()
    full = _tokenizer("full", vocab, lower, strip)
    fast = _tokenizer("fast", vocab, lower, strip)
    texts = []
    for cp in _sweep_code_points():
        c = chr(cp)
        texts.append("a" + c + "b")
        texts.append("\u03a3" + c + "e\u0301")
    expected = full.encode_batch(texts)
    got = fast.encode_batch(texts)
    bad = [ascii(texts[i]) for i in range(len(texts)) if expected[i] != got[i]]
    assert not bad, bad[:20]


@pytest.mark.parametrize("lower,strip", MODES)
def test_fast_matches_full_on_random_strings(lower, strip):
    rng = random.Random(1234)
    assigned = [
        cp
        for cp in range(0x80, 0x30000)
        if unicodedata.category(chr(cp)) != "Cn" and not 0xD800 <= cp <= 0xDFFF
    ]
    pool = [chr(cp) for cp in rng.sample(assigned, 400)]
    pool += list(
        "aAbBe .,'-\u0301\u0308\u0307\u03a3\u03c3\u00df\u0130\t\u4e2d"
        "\u2028\u00a0\u200d\u00ad\x0b\x00\ufffd\ufb01\u216b"
    )
    texts = ["".join(rng.choice(pool) for _ in range(rng.randint(1, 12))) for _ in range(3000)]
    vocab = tokenization.default_vocab_file()
    expected = _tokenizer("full", vocab, lower, strip).encode_batch(texts)
    got = _tokenizer("fast", vocab, lower, strip).encode_batch(texts)
    bad = [ascii(texts[i]) for i in range(len(texts)) if expected[i] != got[i]]
    assert not bad, bad[:20]


def test_fast_interface():
    vocab = tokenization.default_vocab_file()
    fast = _tokenizer("fast", vocab)
    full = _tokenizer("full", vocab)
    assert fast.vocab_size == 30522
    assert fast.special_ids == full.special_ids
    assert fast.vocab == full.vocab
    assert fast.encode_batch([]) == []
    assert fast.tokenize("Hello, World!") == ["hello", ",", "world", "!"]
    with pytest.raises(TypeError):
        fast.encode_batch("not a list")


def test_fast_vocab_with_duplicate_and_empty_lines(tmp_path):
    # BERT: a later duplicate line wins; an empty line is an id no word has.
    path = tmp_path / "dup.txt"
    path.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nfoo\n\nbar\nfoo\n##s\n", encoding="utf-8")
    texts = ["foo bar foos", "baz", "bars"]
    full = tokenization.FullTokenizer(str(path))
    fast = tokenization.FastTokenizer(str(path))
    assert full.encode_batch(texts) == [[8, 7, 8, 9], [1], [7, 9]]
    assert fast.encode_batch(texts) == [[8, 7, 8, 9], [1], [7, 9]]


# ---------------------------------------------------------------------------
# load_tokenizer.
# ---------------------------------------------------------------------------


def test_load_tokenizer_defaults():
    tok = tokenization.load_tokenizer()
    assert isinstance(tok, tokenization.FastTokenizer)
    assert tok.vocab_size == 30522
    slow = tokenization.load_tokenizer(fast=False)
    assert isinstance(slow, tokenization.FullTokenizer)
    assert slow.vocab_file == tokenization.default_vocab_file()
    cased = tokenization.load_tokenizer(TINY_VOCAB, do_lower_case=False, fast=False)
    assert cased.tokenize("Hello hello") == ["Hello", "hello"]
    with pytest.raises(ValueError):
        tokenization.load_tokenizer(vocab_file=TINY_VOCAB, spm_model="x.model")


# ---------------------------------------------------------------------------
# SentencePiece.
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spm_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("spm")
    corpus = d / "corpus.txt"
    corpus.write_text("\n".join(_english_lines()) + "\n", encoding="utf-8")
    return build_vocab.train_sentencepiece([str(corpus)], str(d / "sp"), vocab_size=300)


def test_sentencepiece_tokenizer(spm_model):
    tok = tokenization.load_tokenizer(spm_model=spm_model)
    assert isinstance(tok, tokenization.SentencePieceTokenizer)
    assert tok.special_ids == {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}
    assert tok.vocab_size == 300
    assert tok.convert_ids_to_tokens([0, 1, 2, 3, 4]) == list(tokenization.SPECIAL_TOKENS)
    texts = ["The history of the world.", "", "Anarchism is a philosophy."]
    ids = tok.encode_batch(texts)
    assert ids == [tok.encode(t) for t in texts]
    assert ids[1] == []
    assert all(0 <= i < 300 for row in ids for i in row)
    pieces = tok.tokenize(texts[0])
    assert tok.convert_tokens_to_ids(pieces) == ids[0]
    # Lower-cased model (nmt_nfkc_cf).
    assert tok.encode("THE WORLD") == tok.encode("the world")
    # Control symbols: "[SEP]" in the text is not the separator id.
    assert 3 not in tok.encode("a [SEP] b")


def test_sentencepiece_missing_specials(tmp_path):
    import sentencepiece as spm  # pylint: disable=g-import-not-at-top

    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(_english_lines(8000)) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.Train(
        input=str(corpus), model_prefix=str(tmp_path / "plain"), vocab_size=150, minloglevel=2
    )
    path = str(tmp_path / "plain.model")
    with pytest.raises(ValueError) as err:
        tokenization.SentencePieceTokenizer(path)
    msg = str(err.value)
    assert path in msg
    for token in ("[PAD]", "[CLS]", "[SEP]", "[MASK]"):
        assert token in msg
    assert "[UNK]" not in msg  # falls back to the model's <unk>


def test_sentencepiece_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.model"):
        tokenization.SentencePieceTokenizer(str(tmp_path / "missing.model"))
    garbage = tmp_path / "garbage.model"
    garbage.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="garbage.model"):
        tokenization.SentencePieceTokenizer(str(garbage))


# ---------------------------------------------------------------------------
# build_vocab.
# ---------------------------------------------------------------------------


def test_build_wordpiece_vocab(tmp_path):
    corpus = tmp_path / "corpus.txt"
    lines = _english_lines(8000)
    corpus.write_text('<doc id="1">\n' + "\n".join(lines) + "\n</doc>\n", encoding="utf-8")
    files = build_vocab.corpus_files(str(tmp_path / "*.txt"))
    vocab = build_vocab.build_wordpiece_vocab(files, vocab_size=300, lower_thresh=2)
    assert vocab[:5] == list(tokenization.SPECIAL_TOKENS)
    assert 100 < len(vocab) <= 300
    assert len(set(vocab)) == len(vocab)
    assert list(build_vocab.iter_lines(files)) == [
        line.strip() for line in lines if line.strip()
    ]  # <doc ...> / </doc> skipped
    assert all(t == t.lower() for t in vocab[5:])
    out = tmp_path / "out" / "vocab.txt"
    build_vocab.write_vocab(vocab, str(out))
    tok = tokenization.FullTokenizer(str(out))
    assert tok.special_ids == {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}
    ids = tok.encode_batch(lines)
    n_tokens = sum(len(r) for r in ids)
    n_unk = sum(r.count(1) for r in ids)
    assert n_tokens > 0 and n_unk < 0.05 * n_tokens


def test_build_vocab_missing_or_empty_corpus(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        build_vocab.corpus_files(str(tmp_path / "nothing-here*"))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n</doc>\n", encoding="utf-8")
    with pytest.raises(ValueError, match="empty"):
        build_vocab.build_wordpiece_vocab([str(empty)], vocab_size=100)
    with pytest.raises(ValueError, match="empty"):
        build_vocab.train_sentencepiece([str(empty)], str(tmp_path / "sp"))


def _run_cli(*args):
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "electra_tf.build_vocab"] + list(args),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_build_vocab_cli_help_and_errors(tmp_path):
    res = _run_cli("--help")  # absl exits with status 1 after --help
    for flag in ("--corpus", "--output", "--vocab_size", "--do_lower_case", "--spm"):
        assert flag in res.stdout
    res = _run_cli("--corpus", str(tmp_path / "none*.txt"), "--output", str(tmp_path / "v.txt"))
    assert res.returncode != 0
    assert "No corpus file matches" in res.stderr
    empty = tmp_path / "empty.txt"
    empty.write_text("\n", encoding="utf-8")
    res = _run_cli("--corpus", str(empty), "--output", str(tmp_path / "v.txt"))
    assert res.returncode != 0
    assert "corpus is empty" in res.stderr
