"""Text encoder, first half: a byte-level BPE tokenizer written from scratch, and an embedding.

Byte-pair encoding starts from the 256 possible bytes of UTF-8 text, so any Unicode string
can be encoded without an "unknown" token. Training repeatedly finds the most frequent pair
of adjacent tokens and gives it a new id (a *merge*); encoding replays the merges. Before
counting, text is split into chunks (a word with its leading space, a run of digits, of
punctuation, of spaces) so that merges never cross a word boundary, as GPT-style tokenizers do.
:class:`TokenEmbedding` then turns token ids into vectors: (B, T) -> (B, T, dim).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping

import torch
from torch import nn

from course_lib._validation import (
    MAX_ELEMENTS,
    ArgumentTypeError,
    check_allocation,
    check_int,
    check_sequence,
    check_tensor,
    check_text,
    describe,
)

NUM_BYTES = 256
MAX_VOCAB_SIZE = 1_048_576  # 2**20 ids: eight times Llama 3's 128k vocabulary
# A letter run, a digit run, or a punctuation run (each with an optional leading space),
# then spaces. Every character belongs to exactly one chunk, so the chunks rebuild the text.
CHUNK_PATTERN = re.compile(r" ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+")

SAMPLE_TEXT = (
    "A doctor reads a chest X-ray, a three-month history of cough and weight loss, and the "
    "patient's own words about breathlessness at night. Each channel tells part of the story. "
    "A tokenizer turns the words into numbers; a vision encoder turns the image into patches; "
    "an audio encoder turns the recording into frames. Projected to one width, they can meet."
)


def split_into_chunks(text: str) -> list[str]:
    """Split text into the chunks that BPE merges stay inside (their concatenation is ``text``)."""
    return CHUNK_PATTERN.findall(check_text("text", text))


def _check_id_list(name: str, ids: object) -> list[int]:
    """A list or 1-D integer tensor / array of ids, as a list of Python ints."""
    if not isinstance(ids, (list, tuple)):
        tensor = check_tensor(name, ids, kind="int", ndim=1)
        return tensor.tolist()
    if any(isinstance(i, bool) or not isinstance(i, int) for i in ids):
        kinds = sorted({type(i).__name__ for i in ids if isinstance(i, bool)
                        or not isinstance(i, int)})
        raise ArgumentTypeError(f"{name} must be a list of integer ids, got items of type "
                                f"{', '.join(kinds)}")
    return list(ids)


def _check_pair(name: str, pair: object) -> tuple[int, int]:
    if not isinstance(pair, tuple) or len(pair) != 2:
        raise ArgumentTypeError(f"{name} must be a tuple of two ids, got {describe(pair)}")
    return check_int(f"{name}[0]", pair[0], minimum=0), check_int(f"{name}[1]", pair[1], minimum=0)


def merge_pair(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace each non-overlapping ``pair`` in ``ids`` (scanning left to right) by ``new_id``.

    Shape: ids (T,) -> (T',) with T' <= T.
    """
    ids = _check_id_list("ids", ids)
    pair = _check_pair("pair", pair)
    new_id = check_int("new_id", new_id, minimum=0)
    return _merge_pair(ids, pair, new_id)


def _merge_pair(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    merged, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            merged.append(new_id)
            i += 2
        else:
            merged.append(ids[i])
            i += 1
    return merged


def count_pairs(chunks: Counter) -> Counter:
    """How often each adjacent pair of ids occurs, over chunks (tuples of ids) with counts."""
    if not isinstance(chunks, Mapping):
        raise ArgumentTypeError(f"chunks must be a Counter (tuple of ids -> count), got "
                                f"{describe(chunks)}")
    for chunk, times in chunks.items():
        if not isinstance(chunk, tuple):
            raise ArgumentTypeError(f"chunks must map tuples of ids to counts, got the key "
                                    f"{describe(chunk)}")
        _check_id_list("chunks key", chunk)
        check_int(f"chunks[{chunk!r:.30}]", times, minimum=0)
    return _count_pairs(chunks)


def _count_pairs(chunks: Mapping) -> Counter:
    pairs: Counter = Counter()
    for chunk, times in chunks.items():
        for pair in zip(chunk, chunk[1:]):
            pairs[pair] += times
    return pairs


class BPETokenizer:
    """Byte-level byte-pair-encoding tokenizer.

    Ids 0..255 are the raw bytes; id 256 + k is the k-th learned merge. ``merges`` maps a
    pair of ids to the id that replaces it, in the order they were learned; ``vocab`` maps
    every id to the bytes it stands for.
    """

    def __init__(self) -> None:
        self.merges: dict[tuple[int, int], int] = {}
        self.vocab: dict[int, bytes] = {i: bytes([i]) for i in range(NUM_BYTES)}

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def train(self, texts: list[str] | str, vocab_size: int) -> BPETokenizer:
        """Learn ``vocab_size - 256`` merges from ``texts``; returns ``self``.

        At each step the most frequent adjacent pair is merged; ties go to the smallest pair
        (compared as tuples of ids), so training is deterministic. Training stops early if
        every chunk has become a single token (then ``vocab_size`` is smaller than asked).

        Raises:
            ValueError: if ``vocab_size`` is not an integer in [256, MAX_VOCAB_SIZE] or
                ``texts`` is not a string or list of strings.
        """
        vocab_size = check_int("vocab_size", vocab_size)
        if vocab_size < NUM_BYTES:
            raise ValueError(
                f"vocab_size must be at least {NUM_BYTES} (one id per byte), got {vocab_size}"
            )
        check_int("vocab_size", vocab_size, maximum=MAX_VOCAB_SIZE)
        if isinstance(texts, str):
            texts = [texts]
        texts = check_sequence("texts", texts, of="strings")
        if not all(isinstance(t, str) for t in texts):
            kinds = sorted({type(t).__name__ for t in texts if not isinstance(t, str)})
            raise ArgumentTypeError(f"texts must be a string or a list of strings, got items "
                                    f"of type {', '.join(kinds)}")
        chunks: Counter = Counter()
        for text in texts:
            for chunk in split_into_chunks(text):
                chunks[tuple(chunk.encode("utf-8"))] += 1
        self.__init__()
        for new_id in range(NUM_BYTES, vocab_size):
            pairs = _count_pairs(chunks)
            if not pairs:
                break
            best = max(pairs.values())
            pair = min(p for p, c in pairs.items() if c == best)
            self.merges[pair] = new_id
            self.vocab[new_id] = self.vocab[pair[0]] + self.vocab[pair[1]]
            merged: Counter = Counter()
            for chunk, times in chunks.items():
                merged[tuple(_merge_pair(list(chunk), pair, new_id))] += times
            chunks = merged
        return self

    def _encode_chunk(self, ids: list[int]) -> list[int]:
        # Apply the earliest-learned merge present, until none applies (same as replaying
        # every merge in training order, but only touching pairs that occur).
        while len(ids) > 1:
            pairs = set(zip(ids, ids[1:]))
            pair = min(pairs, key=lambda p: self.merges.get(p, float("inf")))
            if pair not in self.merges:
                break
            ids = merge_pair(ids, pair, self.merges[pair])
        return ids

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (any Unicode string without lone surrogates)."""
        check_text("text", text)
        ids: list[int] = []
        for chunk in split_into_chunks(text):
            ids.extend(self._encode_chunk(list(chunk.encode("utf-8"))))
        return ids

    def _check_ids(self, ids: object) -> list[int]:
        ids = _check_id_list("ids", ids)
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(
                f"ids must lie in [0, {self.vocab_size}) for this vocabulary, got {bad[:5]}"
            )
        return ids

    def decode(self, ids: list[int]) -> str:
        """The text for ``ids`` (a list or 1-D integer tensor). Byte sequences that are not
        valid UTF-8 become U+FFFD."""
        ids = self._check_ids(ids)
        return b"".join(self.vocab[i] for i in ids).decode("utf-8", errors="replace")

    def token_strings(self, ids: list[int]) -> list[str]:
        """Each id's own text, for display; bytes that are only part of a character show as
        escapes, e.g. the emoji 😀 split into four byte tokens shows ``\\xf0`` ``\\x9f`` ..."""
        ids = self._check_ids(ids)
        return [self.vocab[i].decode("utf-8", errors="backslashreplace") for i in ids]


def token_table(tokenizer: BPETokenizer, text: str) -> list[tuple[int, str]]:
    """(id, token text) for every token of ``text``: what the tokenizer box shows."""
    if not isinstance(tokenizer, BPETokenizer):
        raise ArgumentTypeError(f"tokenizer must be a BPETokenizer, got {describe(tokenizer)}")
    ids = tokenizer.encode(text)
    return list(zip(ids, tokenizer.token_strings(ids)))


class TokenEmbedding(nn.Module):
    """A learned lookup table: one ``dim``-wide vector per token id.

    Args:
        vocab_size: number of ids (rows of the table).
        dim: width of each vector.

    Shape:
        token_ids: (B, T) integer ids in [0, vocab_size)
        output: (B, T, dim)
    """

    def __init__(self, vocab_size: int, dim: int) -> None:
        super().__init__()
        check_int("vocab_size", vocab_size, minimum=1)
        check_int("dim", dim, minimum=1)
        check_allocation("vocab_size * dim", vocab_size * dim, MAX_ELEMENTS, "weights")
        self.vocab_size, self.dim = vocab_size, dim
        self.table = nn.Embedding(vocab_size, dim)

    def forward(self, token_ids: torch.Tensor) -> torch.Tensor:
        token_ids = check_tensor("token_ids", token_ids, kind="int", min_ndim=1)
        if token_ids.numel() and (token_ids.min() < 0 or token_ids.max() >= self.vocab_size):
            raise ValueError(
                f"token_ids must lie in [0, {self.vocab_size}), got values from "
                f"{int(token_ids.min())} to {int(token_ids.max())}"
            )
        return self.table(token_ids.long())
