"""The Rust WordPiece gives PaddleNLP BertTokenizer's ids: on texts made to hit every rule (special tokens as words and
inside words, control characters, accents, symbols, CJK, words over 100 characters), on every data set of
../shared/data with a vocabulary that reads it (MiniLM's for sst2 and trec6, a character vocabulary built by
build_char_vocab for douban_book_review), and through encode, pairs and truncation included, against the
tokenizer's own ``tokenizer(a, text_pair=b, max_length=..., truncation=True)``. The default suite takes the first
texts of each split; the slow test takes every text."""
from pathlib import Path

import pytest

from helpers import VOCAB
from paddle_dynafast import data
from paddle_dynafast.data.wordpiece import WordPiece
from paddle_dynafast.errors import ArtifactError, MissingFileError
from paddle_dynafast.model.loading import load_tokenizer, minilm_dir

EDGE_TEXTS = [
    "[SEP] hello [CLS]x[MASK]", "x[SEP]y", "好[SEP]", "([SEP])", "[SEP]\x00", " [UNK]  [PAD]", "[SEP]\u2028a", "[SEP][SEP]",
    "a\u3000[SEP]\u00a0b", "[sep] [Sep] [ＳＥＰ]", "Café naïve ÅNGSTRÖM", "İstanbul ΣΊΣΥΦΟΣ ὈΔΥΣΣΕΎΣ",
    "a\x00b\ufffdc\x85d\u200be\u2028f\u00a0g\u3000h", "x" * 101 + " " + "y" * 100, "emoji 😀👍🏽 ok",
    "＄１００ ￥ ¥ © ® ™ ° ± ² ³ µ º \u00ad Ø ŋ Ʊ 〇", "tab\tnew\nline\r\x0b\x0c\x1c\x1f end", "a^b`c$d|e~f",
    "𠀀𪜀𫝀 CJK ext", "ﬁ ligature Ǆ ǅ ǆ", "\u0301\u0300 combining", "ß ẞ", "Ⅻ ⅻ ①", "★★★★☆ 25～27号 ヽ(≧Д≦)ノ",
    "don't stop-believing... (really)!", "unaffable Unaffable UNAFFABLE", "\u00a0", "\x00",
]


def texts_of(directory: Path, limit=None):
    """Every text_a and text_b of every split, the first ``limit`` of each split."""
    texts = []
    for split in data.SPLITS:
        path = data.find_split(directory, split)
        if path is not None:
            for example in data.read_examples(path)[:limit]:
                texts += [example.text_a] + ([example.text_b] if example.text_b else [])
    return texts


def vocab_dir_for(name: str, directory: Path, tmp_path: Path, limit=None) -> Path:
    """MiniLM's directory for the English sets; a character vocabulary of the (first ``limit``) training texts for
    the Chinese one."""
    if name != "douban_book_review":
        return minilm_dir()
    train = data.read_examples(data.find_split(directory, "train"))[:limit]
    vocab = data.build_char_vocab(e.text_a + " " + (e.text_b or "") for e in train)
    out = tmp_path / "char_vocab"
    out.mkdir()
    (out / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return out


def assert_same_ids(paddlenlp, fast: WordPiece, texts):
    got = fast.ids(texts)
    for text, ids in zip(texts, got):
        assert ids == paddlenlp.convert_tokens_to_ids(paddlenlp.tokenize(text)), repr(text)


def assert_same_encoding(paddlenlp, fast: WordPiece, texts, max_seq_lens=(8, 16, 64)):
    """encode (with the WordPiece) against the tokenizer's own call: single texts, and pairs of neighbouring texts."""
    singles = [data.Example(t, None, None, f"t{i}") for i, t in enumerate(texts)]
    pairs = [data.Example(a, b, None, f"p{i}") for i, (a, b) in enumerate(zip(texts[::2], texts[1::2]))]
    for max_seq_len in max_seq_lens:
        for example, features in zip(singles + pairs, data.encode(singles + pairs, fast, max_seq_len, quiet=True)):
            kwargs = {"text_pair": example.text_b} if example.text_b else {}
            expected = paddlenlp(example.text_a, max_length=max_seq_len, truncation=True, **kwargs)
            assert (features.input_ids, features.token_type_ids) == (
                expected["input_ids"], expected["token_type_ids"]), (example, max_seq_len)


def test_edge_texts_give_the_same_ids():
    paddlenlp, fast = load_tokenizer(minilm_dir()), WordPiece.from_dir(minilm_dir())
    assert_same_ids(paddlenlp, fast, EDGE_TEXTS)
    assert fast.tokenize("[SEP] hello [CLS]x") == paddlenlp.tokenize("[SEP] hello [CLS]x") == [
        "[SEP]", "hello", "[", "cl", "##s", "]", "x"]
    assert_same_encoding(paddlenlp, fast, EDGE_TEXTS, max_seq_lens=(3, 5, 16))


@pytest.mark.parametrize("name", ["sst2", "trec6", "douban_book_review"])
def test_the_first_texts_of_every_data_set_give_the_same_ids(shared_dir, tmp_path, name):
    directory = shared_dir / "data" / name
    vocab = vocab_dir_for(name, directory, tmp_path, limit=2000)
    paddlenlp, fast = load_tokenizer(vocab), WordPiece.from_dir(vocab)
    texts = texts_of(directory, limit=150)
    assert_same_ids(paddlenlp, fast, texts)
    assert_same_encoding(paddlenlp, fast, texts[:120])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sst2", "trec6", "douban_book_review"])
def test_every_text_of_every_data_set_gives_the_same_ids(shared_dir, tmp_path, name):
    """Every text (about 9 600 of sst2, 6 000 of trec6, 40 000 of douban), and every one through encode as a single
    text and in a pair with its neighbour at max_seq_len 16 and 64 (about 4 minutes on 2 busy cores)."""
    directory = shared_dir / "data" / name
    vocab = vocab_dir_for(name, directory, tmp_path)
    paddlenlp, fast = load_tokenizer(vocab), WordPiece.from_dir(vocab)
    texts = texts_of(directory)
    assert len(texts) > 5000
    assert_same_ids(paddlenlp, fast, texts)
    assert_same_encoding(paddlenlp, fast, texts, max_seq_lens=(16, 64))


def test_a_paddlenlp_tokenizer_becomes_its_wordpiece_once(tokenizer):
    fast = WordPiece.of(tokenizer)
    assert WordPiece.of(tokenizer) is fast and WordPiece.of(fast) is fast
    assert (fast.pad_token_id, fast.cls_token_id, fast.sep_token_id, len(fast)) == (0, 2, 3, len(VOCAB))
    assert fast.ids(["good w1 w99", "BAD"]) == [[5, 8, 1], [6]]  # good, w1, [UNK]; BAD lower-cased


def test_a_repeated_token_keeps_its_last_line_and_lower_casing_follows_the_config(tmp_path):
    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB + ["good", "Bad"]) + "\n", encoding="utf-8")
    assert WordPiece.from_dir(tmp_path).ids(["good Bad"]) == [[99, 6]]  # lower-cased: "bad"
    (tmp_path / "tokenizer_config.json").write_text('{"do_lower_case": false}')
    assert WordPiece.from_dir(tmp_path).ids(["good Bad"]) == [[99, 100]]
    assert load_tokenizer(tmp_path).convert_tokens_to_ids(load_tokenizer(tmp_path).tokenize("good Bad")) == [99, 100]


@pytest.mark.parametrize("content, message", [
    ("hello\nworld\n", "has no [PAD] or [UNK] or [CLS] or [SEP]: not a BERT vocabulary (one token a line, the "
                       "special tokens [PAD], [UNK], [CLS], [SEP] among them)"),
    ("", "is empty: a vocabulary holds one token a line"),
    ("\n\n", "is empty: a vocabulary holds one token a line"),
    (b"\xff\xfe[PAD]\n", "is not UTF-8 text (byte 0: b'\\xff'); is it damaged, or a binary file?"),
])
def test_a_vocabulary_that_is_not_one_is_refused_naming_the_file(tmp_path, content, message):
    vocab = tmp_path / "vocab.txt"
    vocab.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ArtifactError) as error:
        WordPiece.from_dir(tmp_path)
    assert str(vocab) in str(error.value) and message in str(error.value)
    with pytest.raises(MissingFileError, match="has no vocab.txt"):
        WordPiece.from_dir(tmp_path / "nothing")


def test_the_same_messages_as_the_loader_a_link_refused_and_mask_optional(tmp_path):
    """The vocabulary of an export is read as model.loading reads a model's (one message for each damage, never
    through a link); without [MASK] (PaddleNLP loads such a vocabulary) a "[MASK]" word is [UNK], as it gives it."""
    import os

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\ngood\n")
    assert WordPiece.from_dir(tmp_path).ids(["good [MASK] good"]) == [[4, 1, 4]]
    (tmp_path / "elsewhere.txt").write_bytes(vocab.read_bytes())
    vocab.unlink()
    os.symlink(tmp_path / "elsewhere.txt", vocab)
    with pytest.raises(ArtifactError, match="vocab.txt is a symbolic link"):
        WordPiece.from_dir(tmp_path)
