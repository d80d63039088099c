"""Tokenising: equal to the tokenizer, pairs cut as it cuts them, truncation counted; the character vocabulary."""
from paddle_dynafast.data.encoding import SPECIAL_TOKENS, build_char_vocab, encode
from paddle_dynafast.data.readers import Example


def test_encode_equals_tokenizer_and_counts_truncation(tokenizer, caplog):
    examples = [Example("w1 good w2", None, "1", "f:1"),
                Example(" ".join(f"w{i}" for i in range(20)), None, "0", "f:2"),
                Example("w1 w2 w3 w4 w5 w6", "w7 w8", "0", "f:3")]
    with caplog.at_level("INFO"):
        features = encode(examples, tokenizer, max_seq_len=8, labels=["0", "1"])
    assert features[0].input_ids == tokenizer("w1 good w2")["input_ids"]
    assert features[0].label == 1 and not features[0].truncated
    assert features[1].input_ids == tokenizer(" ".join(f"w{i}" for i in range(20)), max_length=8, truncation=True)["input_ids"]
    assert features[1].truncated and len(features[1].input_ids) == 8
    # pairs: longest first -> a keeps 3 tokens, b keeps 2; [CLS] a [SEP] b [SEP]
    pair = features[2]
    assert tokenizer.convert_ids_to_tokens(pair.input_ids) == ["[CLS]", "w1", "w2", "w3", "[SEP]", "w7", "w8", "[SEP]"]
    assert pair.token_type_ids == [0, 0, 0, 0, 0, 1, 1, 1]
    assert "truncated 2 of 3 examples to max_seq_len 8" in caplog.text


def test_char_vocab_tokenises_chinese_by_character(tmp_path):
    from paddlenlp.transformers import BertTokenizer

    vocab = build_char_vocab(["这本书很好看", "不好看 abc", "好"], min_count=1)
    assert vocab[:5] == list(SPECIAL_TOKENS)
    assert vocab[5] == "好"  # the most frequent character first
    assert "a" in vocab and "##b" in vocab and "##c" in vocab
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = BertTokenizer(vocab_file=str(tmp_path / "vocab.txt"))
    assert tok.tokenize("这书不好看abc") == ["这", "书", "不", "好", "看", "abc"[0], "##b", "##c"]
    assert tok.tokenize("猫") == ["[UNK]"]
    rare = build_char_vocab(["这本书很好看", "不好看", "好"], min_count=2)
    assert "这" not in rare and "好" in rare and "看" in rare


def test_pairs_are_cut_as_the_tokenizer_cuts_them(tokenizer):
    """Longest first, a tie from text_b: a deployment that calls ``tokenizer(a, text_pair=b, truncation=True)`` (the
    deployment example) feeds the ids and token types we trained on."""
    for n_a, n_b in ((5, 5), (6, 2), (2, 6), (3, 4), (1, 9)):
        a, b = " ".join(f"w{i}" for i in range(n_a)), " ".join(f"w{i}" for i in range(10, 10 + n_b))
        for max_seq_len in range(5, 14):
            got = encode([Example(a, b, None, "f:1")], tokenizer, max_seq_len)[0]
            expected = tokenizer(a, text_pair=b, max_length=max_seq_len, truncation=True)
            assert (got.input_ids, got.token_type_ids) == (expected["input_ids"], expected["token_type_ids"]), (
                n_a, n_b, max_seq_len)
