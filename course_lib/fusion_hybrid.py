"""The two fusion models beyond concatenation, re-exported by :mod:`course_lib.fusion`.

- :class:`HybridFusion` projects each modality to tokens, adds modality embeddings, and fuses
  them with real transformer blocks (self-attention over the joint sequence), then a head.
- :class:`DualEncoderMatcher` is a dual encoder (CLIP-style "late interaction"): separate
  encoders whose unit embeddings meet in one cosine similarity, for matching pairs.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.nn import functional as F

from course_lib.attention import TransformerBlock
from course_lib.audio import sinusoidal_positions
from course_lib.fusion import (
    Features,
    _mlp,
    _model_features,
    check_input_dims,
    pool_tokens,
)


class HybridFusion(nn.Module):
    """Intermediate fusion: modality tokens -> transformer fusion module -> task head.

    Each modality is projected to ``d_model``-wide tokens (a vector becomes one token), gets
    a position code and a learned modality embedding; a learned fusion token is prepended;
    ``depth`` transformer blocks run self-attention over the joint sequence, so every token
    can attend across modalities (cross-modal attention emerges inside self-attention); the
    head reads the fusion token. Any subset of modalities works.

    Shape:
        features[m]: ``(B, D_m)`` or ``(B, T_m, D_m)``; output ``(B, C)``.
    """

    def __init__(self, input_dims: Mapping[str, int], num_classes: int, d_model: int = 64,
                 depth: int = 2, num_heads: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        check_input_dims(input_dims, num_classes)
        if d_model % num_heads != 0:
            raise ValueError(f"d_model {d_model} is not divisible by num_heads {num_heads}")
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.input_dims, self.d_model = dict(input_dims), d_model
        self.projections = nn.ModuleDict(
            {name: nn.Linear(width, d_model) for name, width in input_dims.items()}
        )
        self.modality_embeddings = nn.ParameterDict(
            {name: nn.Parameter(0.02 * torch.randn(d_model)) for name in input_dims}
        )
        self.fusion_token = nn.Parameter(0.02 * torch.randn(1, 1, d_model))
        self.blocks = nn.ModuleList(
            [TransformerBlock(d_model, num_heads, dropout=dropout) for _ in range(depth)]
        )
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_classes)

    def tokens(self, features: Features) -> tuple[torch.Tensor, dict[str, slice]]:
        """The joint sequence ``(B, 1 + sum T_m, d_model)`` and each modality's token slice."""
        features, present = _model_features(self, features, self.input_dims)
        batch = len(features[present[0]])
        sequence, segments, start = [self.fusion_token.expand(batch, -1, -1)], {}, 1
        for name in present:
            values = features[name] if features[name].ndim == 3 else features[name][:, None]
            projected = self.projections[name](values)
            positions = sinusoidal_positions(projected.shape[1], self.d_model).to(projected)
            sequence.append(projected + positions + self.modality_embeddings[name])
            segments[name] = slice(start, start + projected.shape[1])
            start += projected.shape[1]
        return torch.cat(sequence, dim=1), segments

    def forward(self, features: Features) -> torch.Tensor:
        hidden, _ = self.tokens(features)
        for block in self.blocks:
            hidden = block(hidden)
        return self.head(self.norm(hidden[:, 0]))

    @torch.no_grad()
    def attention_mass(self, features: Features) -> dict[str, torch.Tensor]:
        """How much the fusion token attends to each modality in the last block.

        Returns modality -> ``(B,)``: the fusion token's attention weights (averaged over
        heads) summed over that modality's tokens; ``"fusion"`` holds the rest (itself).
        """
        hidden, segments = self.tokens(features)
        for block in self.blocks:
            hidden = block(hidden)
        weights = self.blocks[-1].last_weights  # (B, H, N, N), kept by the block
        from_fusion = weights.mean(dim=1)[:, 0]  # (B, N): what the fusion token attends to
        mass = {name: from_fusion[:, part].sum(dim=-1) for name, part in segments.items()}
        mass["fusion"] = from_fusion[:, 0]
        return mass




class DualEncoderMatcher(nn.Module):
    """A dual encoder for "do these two inputs match?": two towers meet in one cosine.

    Each modality has its own encoder (an MLP) into a shared ``embed_dim``-wide space; the only
    contact between the two is the cosine similarity of their unit embeddings, scaled and
    shifted by two learned numbers: ``match logit = scale * cos(e_a, e_b) + bias``. This is the
    structure of CLIP (Radford et al. 2021, arXiv 2103.00020), trained here, as SigLIP does
    (Zhai et al. 2023, arXiv 2303.15343), with a per-pair sigmoid (binary cross-entropy) loss.
    It is *late interaction*, not decision-level fusion: the towers output embeddings, not
    verdicts, and the similarity compares them coordinate by coordinate.

    Args:
        input_dims: exactly two modalities, name -> feature width.
        num_classes: must be 2 (no match, match).
        embed_dim: width of the shared space.
        hidden_dim: width of each tower's hidden layers.

    Shape:
        features[m]: ``(B, D_m)`` or ``(B, T_m, D_m)`` (mean-pooled); output ``(B, 2)``, logits
        ``[0, match logit]`` so that cross-entropy is the sigmoid loss.
    """

    requires_all_modalities = True

    def __init__(self, input_dims: Mapping[str, int], num_classes: int = 2, embed_dim: int = 32,
                 hidden_dim: int = 64) -> None:
        super().__init__()
        check_input_dims(input_dims, num_classes)
        if len(input_dims) != 2:
            raise ValueError(f"input_dims must name exactly two modalities for a dual encoder, "
                             f"got {list(input_dims)}")
        if num_classes != 2:
            raise ValueError(f"num_classes must be 2 (no match, match), got {num_classes}")
        self.input_dims = dict(input_dims)
        self.encoders = nn.ModuleDict(
            {name: _mlp(width, hidden_dim, embed_dim) for name, width in input_dims.items()}
        )
        self.log_scale = nn.Parameter(torch.tensor(float(torch.log(torch.tensor(10.0)))))
        self.bias = nn.Parameter(torch.tensor(0.0))

    def embeddings(self, features: Features) -> dict[str, torch.Tensor]:
        """Each modality's unit embedding ``(B, embed_dim)``."""
        features, present = _model_features(self, features, self.input_dims)
        if len(present) != 2:
            absent = [name for name in self.input_dims if name not in present]
            raise ValueError(f"a dual encoder compares two inputs; {absent} is missing")
        return {name: F.normalize(self.encoders[name](pool_tokens(features[name])), dim=-1)
                for name in self.input_dims}

    def forward(self, features: Features) -> torch.Tensor:
        first, second = self.embeddings(features).values()
        match = self.log_scale.exp() * (first * second).sum(dim=-1) + self.bias  # (B,)
        return torch.stack([torch.zeros_like(match), match], dim=-1)
