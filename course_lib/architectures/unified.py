"""One causal transformer over [image tokens; audio tokens; text tokens] (a tiny "Thinker").

Every modality is projected to one width and concatenated into one sequence; cross-modal
attention is ordinary causal self-attention over the concatenation. This is a simplification
of the Thinker of Qwen2.5-Omni (Xu et al., 2025, arXiv:2503.20215), which interleaves audio
and video in 2-second chunks and gives them time-aligned positions (TMRoPE); here the
modalities are simply concatenated in a fixed order with learned positions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib._validation import MAX_TOKENS, check_number, check_tensor
from course_lib.architectures._checks import (
    IGNORE_INDEX,
    MAX_DEPTH,
    _check_ids,
    _check_positive_int,
    _check_tokens,
    _check_weights,
)
from course_lib.architectures._generation import greedy_decode
from course_lib.attention import TransformerBlock, causal_mask

__all__ = ["Thinker"]


class Thinker(nn.Module):
    """One causal transformer over [image tokens; audio tokens; text tokens].

    Each modality is projected to the common width ``dim`` (image: Linear(image_dim, dim),
    audio: Linear(audio_dim, dim), text: an embedding table), tagged with a learned modality
    embedding, concatenated in that order, given learned positions and run through causal
    :class:`~course_lib.attention.TransformerBlock` layers; a head predicts the next text
    token at every position. Any subset of the modalities works (text only; image + text;
    audio + text; all three), because absent ones simply contribute no tokens.

    Args:
        vocab_size: text vocabulary (the head's classes).
        dim: the common width (256 in the reference design).
        depth, num_heads, mlp_ratio, dropout: of the transformer blocks.
        image_dim: width of incoming image tokens (e.g. a ViT's CLS vector, 128); None = no
            image input. audio_dim: likewise for audio tokens (e.g. 192).
        max_len: longest sequence (learned positions).

    Shape:
        text_ids: (B, T), image_tokens: (B, N_i, image_dim), audio_tokens: (B, N_a, audio_dim)
        -> logits (B, N_i + N_a + T, vocab_size).
    """

    MODALITIES = ("image", "audio", "text")

    def __init__(self, vocab_size: int, dim: int = 256, depth: int = 4, num_heads: int = 8,
                 image_dim: int | None = None, audio_dim: int | None = None,
                 max_len: int = 512, mlp_ratio: float = 4, dropout: float = 0.0) -> None:
        super().__init__()
        vocab_size = _check_positive_int("vocab_size", vocab_size)
        dim = _check_positive_int("dim", dim)
        depth = _check_positive_int("depth", depth, MAX_DEPTH)
        max_len = _check_positive_int("max_len", max_len, MAX_TOKENS)
        num_heads = _check_positive_int("num_heads", num_heads)
        mlp_ratio = check_number("mlp_ratio", mlp_ratio, above=0, maximum=64)
        dropout = check_number("dropout", dropout, minimum=0, below=1)
        if image_dim is not None:
            image_dim = _check_positive_int("image_dim", image_dim)
            _check_weights("image_dim * dim", image_dim * dim)
        if audio_dim is not None:
            audio_dim = _check_positive_int("audio_dim", audio_dim)
            _check_weights("audio_dim * dim", audio_dim * dim)
        _check_weights("vocab_size * dim", vocab_size * dim)
        _check_weights("max_len * dim", max_len * dim)
        _check_weights("depth * dim * dim", depth * dim * dim * int(4 + 2 * mlp_ratio))
        self.vocab_size, self.dim, self.max_len = vocab_size, dim, max_len
        self.image_dim, self.audio_dim = image_dim, audio_dim
        self.token_embedding = nn.Embedding(vocab_size, dim)
        self.image_projection = None if image_dim is None else nn.Linear(image_dim, dim)
        self.audio_projection = None if audio_dim is None else nn.Linear(audio_dim, dim)
        self.modality_embedding = nn.Embedding(len(self.MODALITIES), dim)
        self.position_embedding = nn.Embedding(max_len, dim)
        self.blocks = nn.ModuleList(TransformerBlock(dim, num_heads, mlp_ratio, dropout)
                                    for _ in range(depth))
        self.final_norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab_size)

    def embed(self, text_ids: Tensor | None = None, image_tokens: Tensor | None = None,
              audio_tokens: Tensor | None = None) -> tuple[Tensor, dict[str, slice]]:
        """The input sequence (B, L, dim) and where each modality sits in it."""
        parts: list[tuple[str, Tensor]] = []
        for name, tokens, projection, width in (
                ("image", image_tokens, self.image_projection, self.image_dim),
                ("audio", audio_tokens, self.audio_projection, self.audio_dim)):
            if tokens is None:
                continue
            if projection is None:
                raise ValueError(f"{name}_tokens given, but this Thinker was built without "
                                 f"{name} input ({name}_dim=None)")
            tokens = _check_tokens(f"{name}_tokens", tokens, width, projection)
            parts.append((name, projection(tokens)))
        if text_ids is not None:
            text_ids = _check_ids("text_ids", text_ids, self.vocab_size)
            parts.append(("text", self.token_embedding(text_ids)))
        parts = [(name, tokens) for name, tokens in parts if tokens.shape[1] > 0]
        if not parts:
            raise ValueError("give at least one of text_ids, image_tokens, audio_tokens "
                             "with at least one token")
        batches = {name: tokens.shape[0] for name, tokens in parts}
        if len(set(batches.values())) != 1:
            raise ValueError(f"the modalities disagree on the batch size B: {batches}")
        layout, start, pieces = {}, 0, []
        for name, tokens in parts:
            kind = torch.full(tokens.shape[:2], self.MODALITIES.index(name),
                              device=tokens.device)
            pieces.append(tokens + self.modality_embedding(kind))
            layout[name] = slice(start, start + tokens.shape[1])
            start += tokens.shape[1]
        if start > self.max_len:
            counts = {name: piece.stop - piece.start for name, piece in layout.items()}
            raise ValueError(f"the sequence has {start} tokens {counts}, more than max_len "
                             f"{self.max_len}")
        sequence = torch.cat(pieces, dim=1)
        positions = torch.arange(start, device=sequence.device)
        return sequence + self.position_embedding(positions), layout

    def hidden_states(self, text_ids: Tensor | None = None,
                      image_tokens: Tensor | None = None,
                      audio_tokens: Tensor | None = None) -> Tensor:
        """The final (normalised) hidden state of every position, (B, L, dim)."""
        tokens, _ = self.embed(text_ids, image_tokens, audio_tokens)
        mask = causal_mask(tokens.shape[1], device=tokens.device)
        for block in self.blocks:
            tokens = block(tokens, attention_mask=mask)
        return self.final_norm(tokens)

    def forward(self, text_ids: Tensor | None = None, image_tokens: Tensor | None = None,
                audio_tokens: Tensor | None = None) -> Tensor:
        return self.head(self.hidden_states(text_ids, image_tokens, audio_tokens))

    def attention_weights(self) -> Tensor:
        """The last forward pass's attention of every layer, (depth, B, H, L, L)."""
        weights = [block.last_weights for block in self.blocks]
        if any(w is None for w in weights):
            raise ValueError("no attention weights yet: run the model forward first")
        return torch.stack(weights)

    def loss(self, text_ids: Tensor, labels: Tensor, image_tokens: Tensor | None = None,
             audio_tokens: Tensor | None = None) -> Tensor:
        """Next-token cross-entropy on the text positions whose label is not -100.

        ``labels`` (B, T) is aligned with ``text_ids``: label t is the token that should be
        predicted *at* text position t (from everything before it), e.g. the answer tokens,
        with -100 on the question.
        """
        text_ids = _check_ids("text_ids", text_ids, self.vocab_size)
        labels = check_tensor("labels", labels, kind="int", ndim=2)
        if labels.shape != text_ids.shape:
            raise ValueError(f"labels must have the shape of text_ids {tuple(text_ids.shape)}, "
                             f"got {tuple(labels.shape)}")
        hidden = self.hidden_states(text_ids, image_tokens, audio_tokens)  # (B, L, dim)
        prefix = hidden.shape[1] - text_ids.shape[1]
        targets = F.pad(labels, (prefix, 0), value=IGNORE_INDEX)[:, 1:]  # what each predicts
        scored = targets != IGNORE_INDEX
        if not bool(scored.any()):
            raise ValueError("labels marks no position to score (every label is -100 or sits "
                             "on the first position)")
        # The head runs only where a label is scored: much cheaper than all (B, L) positions.
        return F.cross_entropy(self.head(hidden[:, :-1][scored]), targets[scored])

    @torch.no_grad()
    def generate(self, text_ids: Tensor, image_tokens: Tensor | None = None,
                 audio_tokens: Tensor | None = None, max_new_tokens: int = 4,
                 eos_id: int | None = None) -> Tensor:
        """Greedy decoding: append the most likely next token, one at a time.

        Rows that produced ``eos_id`` keep producing ``eos_id``; decoding stops early once
        every row has.

        Shape: text_ids (B, T) prompt -> (B, <= max_new_tokens) generated ids.
        """
        text_ids = _check_ids("text_ids", text_ids, self.vocab_size)
        return greedy_decode(
            lambda ids: self.head(self.hidden_states(ids, image_tokens, audio_tokens)[:, -1]),
            text_ids, max_new_tokens, eos_id, self.vocab_size)
