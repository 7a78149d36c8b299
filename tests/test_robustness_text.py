"""Robustness of course_lib.text: wrong arguments are refused by name; edge cases work."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from test_robustness_support import (
    NOT_INT,
    assert_rejects,
    bad_int,
    covers,
    not_a_tensor,
    not_an_int,
    tensor_of_dtype,
)

from course_lib.text import (
    MAX_VOCAB_SIZE,
    BPETokenizer,
    TokenEmbedding,
    count_pairs,
    merge_pair,
    split_into_chunks,
    token_table,
)

TOKENIZER = BPETokenizer().train(["the cat sat on the mat", "no fever, no cough"], 280)
not_a_string = st.one_of(st.none(), st.integers(), st.binary(max_size=3),
                         st.lists(st.text(max_size=2), max_size=2), st.floats())


@pytest.fixture(scope="module")
def embedding():
    return TokenEmbedding(TOKENIZER.vocab_size, 4)


@covers(split_into_chunks, BPETokenizer.encode, token_table)
@given(not_a_string)
def test_text_arguments_must_be_strings(value):
    assert_rejects(split_into_chunks, "text", value)
    assert_rejects(TOKENIZER.encode, "text", value)
    assert_rejects(token_table, "text", TOKENIZER, value)


@covers(split_into_chunks, BPETokenizer.encode, BPETokenizer.decode,
        token_table, BPETokenizer.token_strings)
@given(st.text(max_size=40))
def test_any_unicode_text_round_trips_and_chunks_rebuild_it(text):
    text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    assert "".join(split_into_chunks(text)) == text
    ids = TOKENIZER.encode(text)
    assert TOKENIZER.decode(ids) == text
    assert TOKENIZER.decode(torch.tensor(ids, dtype=torch.long)) == text  # a 1-D tensor too
    assert [i for i, _ in token_table(TOKENIZER, text)] == ids
    assert len(TOKENIZER.token_strings(ids)) == len(ids)


@covers(token_table)
@given(st.one_of(st.none(), st.text(max_size=2), st.just(object())))
def test_token_table_needs_a_tokenizer(value):
    assert_rejects(token_table, "tokenizer", value, "text")


@covers(BPETokenizer.decode, BPETokenizer.token_strings)
@given(st.one_of(
    st.lists(st.one_of(st.floats(0, 200), st.booleans(), st.text(max_size=1)), min_size=1,
             max_size=3).filter(lambda ids: not all(isinstance(i, int) and not isinstance(
                 i, bool) for i in ids)),
    st.lists(st.one_of(st.integers(max_value=-1), st.integers(min_value=280)), min_size=1,
             max_size=3),
    st.sampled_from([torch.ones(2, 2, dtype=torch.long), torch.tensor([1.0, 2.0]), None, "ab"]),
))
def test_decode_refuses_ids_that_are_not_ids_of_this_vocabulary(ids):
    assert_rejects(TOKENIZER.decode, "ids", ids)
    assert_rejects(TOKENIZER.token_strings, "ids", ids)


@covers(BPETokenizer, BPETokenizer.train)
@given(st.one_of(bad_int(256, MAX_VOCAB_SIZE)))
def test_train_refuses_a_bad_vocab_size(vocab_size):
    assert_rejects(BPETokenizer().train, "vocab_size", ["ab"], vocab_size)


@covers(BPETokenizer.train)
@given(st.one_of(st.none(), st.integers(), st.lists(st.integers(), min_size=1, max_size=2),
                 st.just(torch.zeros(3)), st.just(np.array(["a", "b"])),
                 st.just({"a": 1})))
def test_train_refuses_texts_that_are_not_strings(texts):
    assert_rejects(BPETokenizer().train, "texts", texts, 260)


@covers(BPETokenizer, BPETokenizer.train)
@given(st.lists(st.text(max_size=12), max_size=4), st.integers(256, 300))
def test_training_on_any_texts_gives_a_consistent_vocabulary(texts, vocab_size):
    tokenizer = BPETokenizer().train(texts, vocab_size)
    assert 256 <= tokenizer.vocab_size <= vocab_size
    for pair, new_id in tokenizer.merges.items():
        assert tokenizer.vocab[new_id] == tokenizer.vocab[pair[0]] + tokenizer.vocab[pair[1]]
    assert BPETokenizer().train(tuple(texts), vocab_size).merges == tokenizer.merges


@covers(merge_pair)
@given(st.lists(st.integers(0, 3), max_size=12), st.tuples(st.integers(0, 3), st.integers(0, 3)))
def test_merge_pair_replaces_pairs_left_to_right(ids, pair):
    merged = merge_pair(ids, pair, 9)
    # Undoing the merge gives the ids back (an independent check of the scan).
    undone = [part for i in merged for part in (pair if i == 9 else (i,))]
    assert undone == ids
    assert pair not in set(zip(merged, merged[1:]))  # every occurrence was merged


@covers(merge_pair)
@given(st.sampled_from(["ids", "pair", "new_id"]), st.data())
def test_merge_pair_refuses_bad_arguments(argument, data):
    good = {"ids": [1, 2, 1, 2], "pair": (1, 2), "new_id": 9}
    bad = {"ids": st.one_of(not_a_tensor().filter(lambda v: not (
               isinstance(v, list) and all(isinstance(i, int) for i in v))),
               st.just([1.5, 2]), st.just([True])),
           "pair": st.one_of(st.none(), st.just((1,)), st.just((1, 2, 3)), st.just([1, 2]),
                             st.just((1.0, 2)), st.just((-1, 2))),
           "new_id": st.one_of(not_an_int(), st.integers(max_value=-1))}
    kwargs = dict(good, **{argument: data.draw(bad[argument])})
    assert_rejects(merge_pair, argument, **kwargs)


@covers(count_pairs)
@given(st.one_of(st.none(), st.lists(st.integers()), st.just(Counter({"ab": 1})),
                 st.just(Counter({(1, 2): 1.5})), st.just(Counter({(1, "a"): 1}))))
def test_count_pairs_refuses_what_is_not_chunk_counts(chunks):
    assert_rejects(count_pairs, "chunks", chunks)


@covers(count_pairs)
@given(st.dictionaries(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)),
                       st.integers(0, 5), max_size=4))
def test_count_pairs_counts_each_adjacent_pair_times_its_chunk(chunks):
    pairs = count_pairs(Counter(chunks))
    expected = Counter()
    for chunk, times in chunks.items():
        for i in range(len(chunk) - 1):
            expected[chunk[i], chunk[i + 1]] += times
    assert +pairs == +expected


@covers(TokenEmbedding)
@given(st.sampled_from(["vocab_size", "dim"]), st.data())
def test_token_embedding_refuses_bad_sizes(argument, data):
    sizes = {"vocab_size": 10, "dim": 4, argument: data.draw(bad_int(1, 2**26))}
    assert_rejects(TokenEmbedding, argument, **sizes)


def test_token_embedding_refuses_a_table_too_large_for_memory():
    assert_rejects(TokenEmbedding, "vocab_size * dim", 10**6, 10**6)


@covers(TokenEmbedding.forward)
@given(st.one_of(not_a_tensor(), tensor_of_dtype((2, 3), NOT_INT),
                 st.just(torch.tensor([[0, 10**6]])), st.just(torch.tensor([[-1]])),
                 st.just(torch.tensor(3))))
def test_token_embedding_refuses_what_are_not_ids(embedding, token_ids):
    assert_rejects(embedding, "token_ids", token_ids)


@covers(TokenEmbedding.forward)
@given(st.integers(0, 3), st.integers(0, 5), st.sampled_from(
    [torch.int64, torch.int32, torch.int16, torch.uint8, "numpy", "transposed"]))
def test_token_embedding_looks_up_any_integer_ids(embedding, batch, length, kind):
    ids = torch.arange(batch * length).reshape(batch, length) % 200
    if kind == "numpy":
        given_ids = ids.numpy()
    elif kind == "transposed":
        ids = ids.T.contiguous().T  # the same values, not contiguous
        given_ids = ids
    else:
        given_ids = ids.to(kind)
    out = embedding(given_ids)
    assert out.shape == (batch, length, 4)
    torch.testing.assert_close(out, embedding.table.weight[ids.long()])
