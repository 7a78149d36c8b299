import random
from collections import Counter

import pytest
import torch

from course_lib.text import (
    BPETokenizer,
    TokenEmbedding,
    split_into_chunks,
    token_table,
)

CORPUS = [
    "a handwritten seven", "the number 7", "a handwritten one", "the digit one",
    "a picture of the number three", "someone says three", "a handwritten three",
    "café, naïve, über: accents are bytes too", "emoji 😀👍🏽 and CJK 漢字 as well",
]


def _random_text(rng: random.Random, length: int) -> str:
    # Code points from everywhere except the surrogate block (not encodable on its own).
    chars = []
    for _ in range(length):
        point = rng.choice([rng.randrange(0x20, 0x7F), rng.randrange(0xA0, 0xD800),
                            rng.randrange(0xE000, 0x110000), rng.randrange(0x1F300, 0x1FAFF)])
        chars.append(chr(point))
    return "".join(chars)


@pytest.fixture(scope="module")
def tokenizer():
    return BPETokenizer().train(CORPUS, vocab_size=320)


def test_wikipedia_example_gives_the_hand_derived_merges():
    # "aaabdaaabac": aa is most frequent (4) -> 256; then (97,98) and (256,97) tie at 2 and the
    # smaller pair (97,98) wins -> 257; then (256,257) occurs twice -> 258: "XdXac".
    tok = BPETokenizer().train("aaabdaaabac", vocab_size=259)
    assert tok.merges == {(97, 97): 256, (97, 98): 257, (256, 257): 258}
    assert tok.encode("aaabdaaabac") == [258, ord("d"), 258, ord("a"), ord("c")]
    assert tok.vocab[258] == b"aaab"


def test_every_merge_is_the_most_frequent_pair_when_recounted_naively(tokenizer):
    sequences = [list(chunk.encode("utf-8")) for t in CORPUS for chunk in split_into_chunks(t)]
    for pair, new_id in tokenizer.merges.items():
        counts: dict = {}
        for seq in sequences:
            for i in range(len(seq) - 1):
                counts[(seq[i], seq[i + 1])] = counts.get((seq[i], seq[i + 1]), 0) + 1
        best = max(counts.values())
        assert counts.get(pair) == best
        assert pair == min(p for p, c in counts.items() if c == best)  # documented tie-break
        for seq in sequences:  # apply the merge naively, in place, left to right
            i = 0
            while i < len(seq) - 1:
                if (seq[i], seq[i + 1]) == pair:
                    seq[i:i + 2] = [new_id]
                i += 1
    assert len(tokenizer.merges) == 320 - 256


def test_encode_equals_replaying_merges_in_training_order(tokenizer):
    texts = CORPUS + ["handwritten numbers, seven of them", "the the the"]
    for text in texts:
        expected = []
        for chunk in split_into_chunks(text):
            ids = list(chunk.encode("utf-8"))
            for pair, new_id in tokenizer.merges.items():  # dicts keep insertion order
                out, i = [], 0
                while i < len(ids):
                    if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
                        out.append(new_id)
                        i += 2
                    else:
                        out.append(ids[i])
                        i += 1
                ids = out
            expected += ids
        assert tokenizer.encode(text) == expected


@pytest.mark.parametrize("text", ["", "a", "héllo wörld", "😀👍🏽 emoji", "漢字 ñ ø ß",
                                  "  spaces  \n\t tabs", "a_b__c 123 4.5e-6", "\u0301\u200d"])
def test_round_trips_special_text(tokenizer, text):
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_round_trips_random_unicode(tokenizer):
    rng = random.Random(0)
    for length in list(range(0, 20)) + [200, 1000]:
        text = _random_text(rng, length)
        assert tokenizer.decode(tokenizer.encode(text)) == text


def test_chunks_rebuild_the_text_exactly():
    rng = random.Random(1)
    for _ in range(200):
        text = _random_text(rng, rng.randrange(0, 50))
        assert "".join(split_into_chunks(text)) == text


def test_merges_compress_the_training_text(tokenizer):
    text = " ".join(CORPUS)
    assert len(tokenizer.encode(text)) < 0.6 * len(text.encode("utf-8"))


def test_vocab_entries_are_concatenations_of_their_pair(tokenizer):
    for (left, right), new_id in tokenizer.merges.items():
        assert tokenizer.vocab[new_id] == tokenizer.vocab[left] + tokenizer.vocab[right]
    assert tokenizer.vocab_size == 320


def test_token_strings_and_table_show_each_token(tokenizer):
    text = "a handwritten seven"
    table = token_table(tokenizer, text)
    assert "".join(s for _, s in table) == text
    assert [i for i, _ in table] == tokenizer.encode(text)
    assert " handwritten" in [s for _, s in table]
    emoji = tokenizer.token_strings(list("😀".encode()))  # four raw byte tokens
    assert emoji == ["\\xf0", "\\x9f", "\\x98", "\\x80"]


def test_training_stops_when_nothing_is_left_to_merge():
    tok = BPETokenizer().train(["ab"], vocab_size=300)
    assert tok.merges == {(97, 98): 256} and tok.vocab_size == 257


def test_vocab_size_below_256_raises():
    with pytest.raises(ValueError, match="vocab_size"):
        BPETokenizer().train(CORPUS, vocab_size=255)


def test_bad_texts_and_ids_raise(tokenizer):
    with pytest.raises(ValueError, match="texts"):
        BPETokenizer().train([1, 2], vocab_size=300)
    with pytest.raises(ValueError, match="text"):
        tokenizer.encode(b"bytes")
    with pytest.raises(ValueError, match="ids"):
        tokenizer.decode([0, 320])


def test_token_embedding_looks_up_rows_of_its_table():
    torch.manual_seed(0)
    embed = TokenEmbedding(vocab_size=300, dim=16)
    ids = torch.tensor([[1, 299, 5], [7, 7, 0]])
    out = embed(ids)
    assert out.shape == (2, 3, 16)
    torch.testing.assert_close(out, embed.table.weight[ids])
    torch.testing.assert_close(out[1, 0], out[1, 1])


def test_token_embedding_rejects_bad_ids():
    embed = TokenEmbedding(vocab_size=300, dim=8)
    with pytest.raises(ValueError, match="token_ids"):
        embed(torch.tensor([[0, 300]]))
    with pytest.raises(ValueError, match="token_ids"):
        embed(torch.tensor([[-1]]))
    with pytest.raises(ValueError, match="token_ids"):
        embed(torch.tensor([[0.5]]))


def test_counts_in_training_are_over_all_texts():
    # "ab" occurs 3 times in total, "cd" twice; "ab" must be merged first.
    tok = BPETokenizer().train(["ab cd", "ab", "ab cd"], vocab_size=257)
    assert list(tok.merges) == [(97, 98)]
    assert Counter(tok.encode("ab ab"))[256] == 2
