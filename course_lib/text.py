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

import torch
from torch import nn

NUM_BYTES = 256
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
    return CHUNK_PATTERN.findall(text)


def merge_pair(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace each non-overlapping ``pair`` in ``ids`` (scanning left to right) by ``new_id``."""
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
            ValueError: if ``vocab_size`` < 256 or ``texts`` is not a string or list of strings.
        """
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
            raise ValueError(f"vocab_size must be an integer, got {vocab_size!r}")
        if vocab_size < NUM_BYTES:
            raise ValueError(
                f"vocab_size must be at least {NUM_BYTES} (one id per byte), got {vocab_size}"
            )
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, (list, tuple)) or not all(isinstance(t, str) for t in texts):
            raise ValueError("texts must be a string or a list of strings")
        chunks: Counter = Counter()
        for text in texts:
            for chunk in split_into_chunks(text):
                chunks[tuple(chunk.encode("utf-8"))] += 1
        self.__init__()
        for new_id in range(NUM_BYTES, vocab_size):
            pairs = count_pairs(chunks)
            if not pairs:
                break
            best = max(pairs.values())
            pair = min(p for p, c in pairs.items() if c == best)
            self.merges[pair] = new_id
            self.vocab[new_id] = self.vocab[pair[0]] + self.vocab[pair[1]]
            merged: Counter = Counter()
            for chunk, times in chunks.items():
                merged[tuple(merge_pair(list(chunk), pair, new_id))] += times
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
        if not isinstance(text, str):
            raise ValueError(f"text must be a string, got {type(text).__name__}")
        ids: list[int] = []
        for chunk in split_into_chunks(text):
            ids.extend(self._encode_chunk(list(chunk.encode("utf-8"))))
        return ids

    def _check_ids(self, ids: list[int]) -> None:
        bad = [i for i in ids if not 0 <= int(i) < self.vocab_size]
        if bad:
            raise ValueError(
                f"ids must lie in [0, {self.vocab_size}) for this vocabulary, got {bad[:5]}"
            )

    def decode(self, ids: list[int]) -> str:
        """The text for ``ids``. Byte sequences that are not valid UTF-8 become U+FFFD."""
        self._check_ids(ids)
        return b"".join(self.vocab[int(i)] for i in ids).decode("utf-8", errors="replace")

    def token_strings(self, ids: list[int]) -> list[str]:
        """Each id's own text, for display; bytes that are only part of a character show as
        escapes, e.g. the emoji 😀 split into four byte tokens shows ``\\xf0`` ``\\x9f`` ..."""
        self._check_ids(ids)
        return [self.vocab[int(i)].decode("utf-8", errors="backslashreplace") for i in ids]


def token_table(tokenizer: BPETokenizer, text: str) -> list[tuple[int, str]]:
    """(id, token text) for every token of ``text``: what the tokenizer box shows."""
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
        if vocab_size < 1:
            raise ValueError(f"vocab_size must be positive, got {vocab_size}")
        if dim < 1:
            raise ValueError(f"dim must be positive, got {dim}")
        self.vocab_size, self.dim = vocab_size, dim
        self.table = nn.Embedding(vocab_size, dim)

    def forward(self, token_ids: torch.Tensor) -> torch.Tensor:
        if token_ids.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise ValueError(f"token_ids must be integer ids, got dtype {token_ids.dtype}")
        if token_ids.numel() and (token_ids.min() < 0 or token_ids.max() >= self.vocab_size):
            raise ValueError(
                f"token_ids must lie in [0, {self.vocab_size}), got values from "
                f"{int(token_ids.min())} to {int(token_ids.max())}"
            )
        return self.table(token_ids.long())
