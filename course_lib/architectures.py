"""Real multimodal architectures, small enough to read: LLaVA, Flamingo, one token sequence.

- **LLaVA**: y = LLM([W . ViT(I) ; Embed(T)]). A projector W maps every patch token of a
  (frozen) vision encoder to the language model's width, and the image tokens are spliced
  into the text at an ``<image>`` placeholder: the sequence grows with every image.
- **Flamingo**: a Perceiver resampler squeezes any number of visual tokens into a fixed set
  of latents (64), which frozen language-model layers read through gated cross-attention
  blocks, h' = h + tanh(alpha) * CrossAttn(h, v), with alpha = 0 at the start (identity).
  The language model's sequence does not grow with images.
- **Unified sequence ("Thinker")**: image, audio and text tokens projected to one width and
  concatenated, [image; audio; text], into one causal transformer with a next-token head.
- **Natively multimodal**: a codebook turns image patches into discrete ids that share one
  vocabulary with the text (:class:`PatchCodebook`).

Plus what it costs and what is trained: :func:`count_on_meta` sizes a model on the ``meta``
device (no memory allocated), and :func:`llava_training_stage` /
:func:`flamingo_training_stage` set ``requires_grad`` for each recipe's training stage.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib.attention import (
    FeedForward,
    GatedCrossAttentionBlock,
    MultiHeadCrossAttention,
    TransformerBlock,
    causal_mask,
)
from course_lib.vision import patchify

__all__ = [
    "GatedCrossAttentionBlock", "PerceiverResampler", "LlavaProjector", "SplicedSequence",
    "splice_image_tokens", "LlamaBlock", "DecoderLM", "LlavaLikeModel", "FlamingoLikeModel",
    "Thinker", "ModelSize", "count_parameters", "count_on_meta", "set_trainable",
    "llava_training_stage", "flamingo_training_stage", "kmeans", "PatchCodebook",
    "GateFlow", "gate_flow", "cross_attention_update", "sequence_lengths", "apply_rotary",
    "IGNORE_INDEX",
]

IGNORE_INDEX = -100  # label value that F.cross_entropy skips (its default ignore_index)


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_tokens(name: str, tokens: object, width: int | None = None) -> None:
    if not isinstance(tokens, Tensor) or tokens.dim() != 3:
        shape = tuple(tokens.shape) if isinstance(tokens, Tensor) else type(tokens).__name__
        raise ValueError(f"{name} must have shape (B, tokens, width), got {shape}")
    if width is not None and tokens.shape[-1] != width:
        raise ValueError(f"{name} has width {tokens.shape[-1]}, but the model was built for "
                         f"width {width}")


# ============================================================================ Flamingo
class PerceiverResampler(nn.Module):
    """Flamingo's Perceiver resampler: learned latents read any number of media tokens.

    Each layer lets the latents attend to the concatenation [media; latents] (keys and values),
    then applies a feed-forward network, both with residual connections. However many media
    tokens come in (1 or 577), ``num_latents`` tokens go out. (Flamingo also adds a learned
    time embedding per video frame; a single image does not need it.)

    Args:
        dim: width of the media tokens and of the latents.
        num_latents: how many tokens come out (64 in Flamingo).
        depth: number of (cross-attention, feed-forward) layers.
        num_heads: attention heads (must divide ``dim``).
        ff_mult: feed-forward hidden width as a multiple of ``dim``.

    Shape:
        media: (B, M, dim), media_mask: (B, M) bool, True = a real token (False = padding)
        -> (B, num_latents, dim).
    """

    def __init__(self, dim: int, num_latents: int = 64, depth: int = 2, num_heads: int = 8,
                 ff_mult: int = 4) -> None:
        super().__init__()
        for name, value in (("dim", dim), ("num_latents", num_latents), ("depth", depth),
                            ("num_heads", num_heads), ("ff_mult", ff_mult)):
            _check_positive_int(name, value)
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.dim, self.num_latents = dim, num_latents
        self.latents = nn.Parameter(torch.randn(num_latents, dim) * 0.02)
        self.layers = nn.ModuleList(
            nn.ModuleDict({
                "media_norm": nn.LayerNorm(dim),
                "latent_norm": nn.LayerNorm(dim),
                "attention": MultiHeadCrossAttention(dim, num_heads),
                "feed_forward_norm": nn.LayerNorm(dim),
                "feed_forward": FeedForward(dim, dim * ff_mult),
            })
            for _ in range(depth)
        )
        self.final_norm = nn.LayerNorm(dim)

    def forward(self, media: Tensor, media_mask: Tensor | None = None) -> Tensor:
        _check_tokens("media", media, self.dim)
        batch, num_media = media.shape[:2]
        if num_media < 1:
            raise ValueError("media must hold at least one token (M >= 1)")
        latents = self.latents.expand(batch, -1, -1)  # (B, R, dim)
        context_mask = None
        if media_mask is not None:
            if (not isinstance(media_mask, Tensor) or media_mask.dtype != torch.bool
                    or tuple(media_mask.shape) != (batch, num_media)):
                raise ValueError(f"media_mask must be a bool tensor of shape {(batch, num_media)}"
                                 f", got {getattr(media_mask, 'dtype', media_mask)} "
                                 f"{tuple(getattr(media_mask, 'shape', ()))}")
            keep_latents = media_mask.new_ones(batch, self.num_latents)
            context_mask = torch.cat([media_mask, keep_latents], dim=1)  # (B, M + R)
        for layer in self.layers:
            queries = layer["latent_norm"](latents)
            context = torch.cat([layer["media_norm"](media), queries], dim=1)  # (B, M + R, dim)
            latents = latents + layer["attention"](queries, context, context_mask=context_mask)
            latents = latents + layer["feed_forward"](layer["feed_forward_norm"](latents))
        return self.final_norm(latents)


# ============================================================================ LLaVA
class LlavaProjector(nn.Module):
    """LLaVA's projector W from the vision encoder's width to the language model's width.

    ``kind="linear"`` (LLaVA 1.0): one ``nn.Linear``. ``kind="mlp"`` (LLaVA 1.5's
    ``mlp2x_gelu``): Linear -> GELU -> Linear.

    Shape: image_features (B, N, vision_dim) -> (B, N, llm_dim).
    """

    KINDS = ("linear", "mlp")

    def __init__(self, vision_dim: int, llm_dim: int, kind: str = "mlp") -> None:
        super().__init__()
        _check_positive_int("vision_dim", vision_dim)
        _check_positive_int("llm_dim", llm_dim)
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {self.KINDS}, got {kind!r}")
        self.vision_dim, self.llm_dim, self.kind = vision_dim, llm_dim, kind
        if kind == "linear":
            self.layers = nn.Sequential(nn.Linear(vision_dim, llm_dim))
        else:
            self.layers = nn.Sequential(nn.Linear(vision_dim, llm_dim), nn.GELU(),
                                        nn.Linear(llm_dim, llm_dim))

    def forward(self, image_features: Tensor) -> Tensor:
        _check_tokens("image_features", image_features, self.vision_dim)
        return self.layers(image_features)


@dataclass(frozen=True)
class SplicedSequence:
    """Text with image tokens spliced in at the placeholders, padded on the right.

    Shape: embeddings (B, L, D); attention_mask, image_positions (B, L) bool (True = a real
    token / an image token); labels (B, L) int64 with -100 at image and padding positions.
    """

    embeddings: Tensor
    attention_mask: Tensor
    labels: Tensor
    image_positions: Tensor


def splice_image_tokens(text_embeddings: Tensor, input_ids: Tensor, image_tokens: Tensor,
                        image_token_id: int, labels: Tensor | None = None,
                        attention_mask: Tensor | None = None) -> SplicedSequence:
    """Replace each ``<image>`` placeholder by the N tokens of one image (LLaVA's splice).

    Placeholders are filled with the images in reading order (row 0 first, left to right).
    A row with k placeholders grows by k * (N - 1) tokens; shorter rows are padded on the
    right (attention_mask False, label -100). Image tokens get label -100: the model is never
    asked to predict an image token.

    Args:
        text_embeddings: the embedded ``input_ids`` (placeholder rows are discarded).
        input_ids: token ids, with ``image_token_id`` where an image belongs.
        image_tokens: projected image tokens, one (N, D) block per placeholder.
        image_token_id: the id of the ``<image>`` placeholder.
        labels: next-token targets aligned with ``input_ids`` (default: ``input_ids``).
        attention_mask: True for real text tokens (default: all True).

    Shape:
        text_embeddings: (B, T, D), input_ids: (B, T), image_tokens: (I, N, D) with I = the
        number of placeholders in ``input_ids``, labels/attention_mask: (B, T)
        -> :class:`SplicedSequence` of length L = max over rows of T + k_b * (N - 1).
    """
    if not isinstance(text_embeddings, Tensor) or text_embeddings.dim() != 3:
        raise ValueError(f"text_embeddings must have shape (B, T, D), got "
                         f"{getattr(text_embeddings, 'shape', text_embeddings)}")
    batch, length, width = text_embeddings.shape
    if (not isinstance(input_ids, Tensor) or input_ids.is_floating_point()
            or tuple(input_ids.shape) != (batch, length)):
        raise ValueError(f"input_ids must be integer ids of shape {(batch, length)} (B, T of "
                         f"text_embeddings), got {getattr(input_ids, 'shape', input_ids)}")
    _check_tokens("image_tokens", image_tokens, width)
    if isinstance(image_token_id, bool) or not isinstance(image_token_id, int):
        raise ValueError(f"image_token_id must be an integer id, got {image_token_id!r}")
    for name, tensor in (("labels", labels), ("attention_mask", attention_mask)):
        if tensor is not None and (not isinstance(tensor, Tensor)
                                   or tuple(tensor.shape) != (batch, length)):
            raise ValueError(f"{name} must have shape {(batch, length)} like input_ids, got "
                             f"{getattr(tensor, 'shape', tensor)}")
    is_placeholder = input_ids == image_token_id
    if int(is_placeholder.sum()) != len(image_tokens):
        raise ValueError(f"input_ids holds {int(is_placeholder.sum())} placeholder(s) "
                         f"(image_token_id {image_token_id}) but image_tokens holds "
                         f"{len(image_tokens)} image(s): one image per placeholder is needed")
    labels = input_ids if labels is None else labels
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids, dtype=torch.bool)
    image_length, device = image_tokens.shape[1], text_embeddings.device
    rows, next_image = [], 0
    for b in range(batch):
        pieces, masks, targets, kinds = [], [], [], []
        start = 0
        for position in is_placeholder[b].nonzero().flatten().tolist() + [length]:
            pieces.append(text_embeddings[b, start:position])  # the text before it
            masks.append(attention_mask[b, start:position].bool())
            targets.append(labels[b, start:position].long())
            kinds.append(torch.zeros(position - start, dtype=torch.bool, device=device))
            if position < length:  # the placeholder itself: one image's N tokens
                pieces.append(image_tokens[next_image].to(text_embeddings.dtype))
                masks.append(torch.ones(image_length, dtype=torch.bool, device=device))
                targets.append(torch.full((image_length,), IGNORE_INDEX, device=device))
                kinds.append(torch.ones(image_length, dtype=torch.bool, device=device))
                next_image += 1
            start = position + 1
        rows.append((torch.cat(pieces), torch.cat(masks), torch.cat(targets), torch.cat(kinds)))
    total = max(len(row[0]) for row in rows)
    embeddings = text_embeddings.new_zeros(batch, total, width)
    out_mask = torch.zeros(batch, total, dtype=torch.bool, device=device)
    out_labels = torch.full((batch, total), IGNORE_INDEX, dtype=torch.long, device=device)
    out_image = torch.zeros(batch, total, dtype=torch.bool, device=device)
    for b, (tokens, mask, targets, kinds) in enumerate(rows):
        n = len(tokens)
        embeddings[b, :n] = tokens
        out_mask[b, :n] = mask
        out_labels[b, :n] = targets.masked_fill(~mask, IGNORE_INDEX)
        out_image[b, :n] = kinds
    return SplicedSequence(embeddings, out_mask, out_labels, out_image)


# ============================================================================ a LLaMA-like LM
def apply_rotary(tokens: Tensor, base: float = 10_000.0) -> Tensor:
    """Rotary position embedding (RoPE, LLaMA's ``rotate_half`` layout); no parameters.

    Shape: tokens (B, H, T, head_dim) with an even head_dim -> same shape.
    """
    if not isinstance(tokens, Tensor) or tokens.dim() < 2 or tokens.shape[-1] % 2:
        raise ValueError(f"tokens must have shape (..., T, head_dim) with an even head_dim, "
                         f"got {getattr(tokens, 'shape', tokens)}")
    half = tokens.shape[-1] // 2
    frequencies = base ** (-torch.arange(half, device=tokens.device, dtype=torch.float32) / half)
    angles = torch.arange(tokens.shape[-2], device=tokens.device)[:, None] * frequencies
    cos, sin = angles.cos().to(tokens.dtype), angles.sin().to(tokens.dtype)
    first, second = tokens[..., :half], tokens[..., half:]
    return torch.cat([first * cos - second * sin, first * sin + second * cos], dim=-1)


class LlamaBlock(nn.Module):
    """One LLaMA-style decoder layer: RMSNorm, causal self-attention with RoPE and no biases,
    RMSNorm, SwiGLU feed-forward (three matrices: gate, up, down).

    Parameters: 4 dim^2 (attention) + 3 dim ff_dim (SwiGLU) + 2 dim (norms).

    Shape: tokens (B, T, dim), padding_mask (B, T) bool, True = real token -> (B, T, dim).
    """

    def __init__(self, dim: int, num_heads: int, ff_dim: int) -> None:
        super().__init__()
        for name, value in (("dim", dim), ("num_heads", num_heads), ("ff_dim", ff_dim)):
            _check_positive_int(name, value)
        if dim % num_heads or (dim // num_heads) % 2:
            raise ValueError(f"dim {dim} must split into num_heads {num_heads} heads of even "
                             "width (rotary positions rotate pairs of dimensions)")
        self.num_heads = num_heads
        self.attention_norm = nn.RMSNorm(dim, eps=1e-6)
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = (
            nn.Linear(dim, dim, bias=False) for _ in range(4))
        self.feed_forward_norm = nn.RMSNorm(dim, eps=1e-6)
        self.gate_proj = nn.Linear(dim, ff_dim, bias=False)
        self.up_proj = nn.Linear(dim, ff_dim, bias=False)
        self.down_proj = nn.Linear(ff_dim, dim, bias=False)

    def forward(self, tokens: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        batch, length, dim = tokens.shape
        normed = self.attention_norm(tokens)
        q, k, v = (proj(normed).view(batch, length, self.num_heads, -1).transpose(1, 2)
                   for proj in (self.q_proj, self.k_proj, self.v_proj))
        mask = causal_mask(length, device=tokens.device)  # (T, T), True = may attend
        if padding_mask is not None:
            mask = mask & padding_mask[:, None, None, :]  # (B, 1, T, T)
        attended = F.scaled_dot_product_attention(apply_rotary(q), apply_rotary(k), v,
                                                  attn_mask=mask)
        tokens = tokens + self.o_proj(attended.transpose(1, 2).reshape(batch, length, dim))
        normed = self.feed_forward_norm(tokens)
        return tokens + self.down_proj(F.silu(self.gate_proj(normed)) * self.up_proj(normed))


class DecoderLM(nn.Module):
    """A LLaMA-like causal language model: token embedding, ``depth`` :class:`LlamaBlock`
    layers, a final RMSNorm and an (untied) output head.

    LLaMA-7B: ``DecoderLM(32000, 4096, 32, 32, 11008)`` (6,738,415,616 parameters).

    Shape: input_ids (B, T) -> logits (B, T, vocab_size); :meth:`forward_embeddings` takes
    (B, T, dim) embeddings (e.g. text with spliced image tokens) instead of ids.
    """

    def __init__(self, vocab_size: int, dim: int, depth: int, num_heads: int,
                 ff_dim: int) -> None:
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("depth", depth)):
            _check_positive_int(name, value)
        self.vocab_size, self.dim = vocab_size, dim
        self.token_embedding = nn.Embedding(vocab_size, dim)
        self.blocks = nn.ModuleList(LlamaBlock(dim, num_heads, ff_dim) for _ in range(depth))
        self.final_norm = nn.RMSNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, vocab_size, bias=False)

    def embed(self, input_ids: Tensor) -> Tensor:
        if not isinstance(input_ids, Tensor) or input_ids.dim() != 2:
            raise ValueError(f"input_ids must have shape (B, T), got "
                             f"{getattr(input_ids, 'shape', input_ids)}")
        if input_ids.numel() and (input_ids.min() < 0 or input_ids.max() >= self.vocab_size):
            raise ValueError(f"input_ids must lie in [0, {self.vocab_size}), got values "
                             f"{int(input_ids.min())}..{int(input_ids.max())}")
        return self.token_embedding(input_ids)

    def forward_embeddings(self, embeddings: Tensor,
                           padding_mask: Tensor | None = None) -> Tensor:
        _check_tokens("embeddings", embeddings, self.dim)
        if padding_mask is not None and (
                not isinstance(padding_mask, Tensor) or padding_mask.dtype != torch.bool
                or padding_mask.shape != embeddings.shape[:2]):
            raise ValueError(f"padding_mask must be a bool tensor of shape "
                             f"{tuple(embeddings.shape[:2])} (B, T), got "
                             f"{getattr(padding_mask, 'dtype', padding_mask)} "
                             f"{tuple(getattr(padding_mask, 'shape', ()))}")
        for block in self.blocks:
            embeddings = block(embeddings, padding_mask)
        return self.head(self.final_norm(embeddings))

    def forward(self, input_ids: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        return self.forward_embeddings(self.embed(input_ids), padding_mask)


class LlavaLikeModel(nn.Module):
    """y = LLM([W . ViT(I) ; Embed(T)]): vision encoder, projector, language model.

    Args:
        vision_encoder: maps images to (I, N', vision_dim) tokens; ``None`` means the caller
            passes precomputed visual features instead of images.
        vision_dim: width of the visual tokens.
        language_model: a :class:`DecoderLM`.
        image_token_id: the ``<image>`` placeholder id in the text.
        projector_kind: ``"linear"`` or ``"mlp"`` (see :class:`LlavaProjector`).
        drop_cls_token: drop the first visual token (LLaVA keeps the 576 patch tokens of
            CLIP ViT-L/14-336 and drops its CLS token).

    Shape: images -> visual tokens (I, N, vision_dim); input_ids (B, T) with I placeholders
    -> logits (B, L, vocab_size) and the :class:`SplicedSequence` (L = T + I (N - 1) for one
    image per row).
    """

    def __init__(self, vision_encoder: nn.Module | None, vision_dim: int,
                 language_model: DecoderLM, image_token_id: int, projector_kind: str = "mlp",
                 drop_cls_token: bool = False) -> None:
        super().__init__()
        if not isinstance(language_model, DecoderLM):
            raise ValueError(f"language_model must be a DecoderLM, got "
                             f"{type(language_model).__name__}")
        if (isinstance(image_token_id, bool) or not isinstance(image_token_id, int)
                or not 0 <= image_token_id < language_model.vocab_size):
            raise ValueError(f"image_token_id must be an id in [0, {language_model.vocab_size}) "
                             f"(the language model's vocabulary), got {image_token_id!r}")
        self.vision_encoder = vision_encoder
        self.projector = LlavaProjector(vision_dim, language_model.dim, projector_kind)
        self.language_model = language_model
        self.image_token_id, self.drop_cls_token = image_token_id, drop_cls_token

    def image_tokens(self, images: Tensor) -> Tensor:
        features = images if self.vision_encoder is None else self.vision_encoder(images)
        if self.drop_cls_token:
            features = features[:, 1:]
        return self.projector(features)

    def forward(self, images: Tensor, input_ids: Tensor,
                labels: Tensor | None = None) -> tuple[Tensor, SplicedSequence]:
        spliced = splice_image_tokens(self.language_model.embed(input_ids), input_ids,
                                      self.image_tokens(images), self.image_token_id, labels)
        logits = self.language_model.forward_embeddings(spliced.embeddings,
                                                        spliced.attention_mask)
        return logits, spliced


class FlamingoLikeModel(nn.Module):
    """Frozen LM layers interleaved with gated cross-attention to resampled visual latents.

    Before every ``cross_every``-th LM layer a :class:`GatedCrossAttentionBlock` lets the text
    read the resampler's ``num_latents`` visual tokens. The text sequence keeps its length.

    Shape: media (B, M, vision_dim) (or images, through ``vision_encoder``), input_ids (B, T)
    -> logits (B, T, vocab_size).
    """

    def __init__(self, vision_encoder: nn.Module | None, vision_dim: int,
                 language_model: DecoderLM, num_latents: int = 64, resampler_depth: int = 2,
                 num_heads: int = 8, cross_every: int = 1) -> None:
        super().__init__()
        _check_positive_int("cross_every", cross_every)
        if not isinstance(language_model, DecoderLM):
            raise ValueError(f"language_model must be a DecoderLM, got "
                             f"{type(language_model).__name__}")
        self.vision_encoder = vision_encoder
        self.resampler = PerceiverResampler(vision_dim, num_latents, resampler_depth, num_heads)
        self.language_model = language_model
        self.cross_every = cross_every
        count = math.ceil(len(language_model.blocks) / cross_every)
        self.cross_blocks = nn.ModuleList(
            GatedCrossAttentionBlock(language_model.dim, num_heads, kv_dim=vision_dim)
            for _ in range(count))

    def forward(self, media: Tensor, input_ids: Tensor,
                media_mask: Tensor | None = None) -> Tensor:
        features = media if self.vision_encoder is None else self.vision_encoder(media)
        latents = self.resampler(features, media_mask)  # (B, num_latents, vision_dim)
        lm = self.language_model
        tokens = lm.embed(input_ids)
        for index, block in enumerate(lm.blocks):
            if index % self.cross_every == 0:
                tokens = self.cross_blocks[index // self.cross_every](tokens, latents)
            tokens = block(tokens)
        return lm.head(lm.final_norm(tokens))


# ============================================================================ unified sequence
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
        for name, value in (("vocab_size", vocab_size), ("dim", dim), ("depth", depth),
                            ("max_len", max_len)):
            _check_positive_int(name, value)
        for name, value in (("image_dim", image_dim), ("audio_dim", audio_dim)):
            if value is not None:
                _check_positive_int(name, value)
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
            _check_tokens(f"{name}_tokens", tokens, width)
            parts.append((name, projection(tokens)))
        if text_ids is not None:
            if (not isinstance(text_ids, Tensor) or text_ids.dim() != 2
                    or text_ids.is_floating_point()):
                raise ValueError(f"text_ids must be integer ids of shape (B, T), got "
                                 f"{getattr(text_ids, 'shape', text_ids)}")
            if text_ids.numel() and (text_ids.min() < 0 or text_ids.max() >= self.vocab_size):
                raise ValueError(f"text_ids must lie in [0, {self.vocab_size}), got values "
                                 f"{int(text_ids.min())}..{int(text_ids.max())}")
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
        if not isinstance(labels, Tensor) or labels.shape != text_ids.shape:
            raise ValueError(f"labels must have the shape of text_ids {tuple(text_ids.shape)}, "
                             f"got {getattr(labels, 'shape', labels)}")
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
        _check_positive_int("max_new_tokens", max_new_tokens)
        generated = text_ids[:, :0]
        finished = torch.zeros(len(text_ids), dtype=torch.bool, device=text_ids.device)
        for _ in range(max_new_tokens):
            hidden = self.hidden_states(torch.cat([text_ids, generated], dim=1), image_tokens,
                                        audio_tokens)
            next_ids = self.head(hidden[:, -1]).argmax(dim=-1)
            if eos_id is not None:
                next_ids = next_ids.masked_fill(finished, eos_id)
                finished = finished | (next_ids == eos_id)
            generated = torch.cat([generated, next_ids[:, None]], dim=1)
            if eos_id is not None and bool(finished.all()):
                break
        return generated


# ============================================================================ size and stages
def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``model`` (shared tensors counted once); works on ``meta``."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@dataclass(frozen=True)
class ModelSize:
    """A model's parameter count and what its weights occupy at each precision.

    ``by_part`` counts the parameters of each top-level child module.
    """

    parameters: int
    by_part: dict[str, int]

    def weight_bytes(self, dtype: torch.dtype = torch.float16) -> int:
        """Bytes for the weights alone stored as ``dtype`` (fp32: 4 per parameter)."""
        return self.parameters * dtype.itemsize

    def training_bytes(self) -> int:
        """Mixed-precision training with Adam, before activations: fp16 weights (2) + fp16
        gradients (2) + fp32 master weights (4) + Adam's two moments (4 + 4) = 16 bytes per
        parameter."""
        return 16 * self.parameters


def count_on_meta(build: Callable[[], nn.Module]) -> ModelSize:
    """Build a model on PyTorch's ``meta`` device and count it; no weight memory is allocated.

    On ``meta`` a tensor has a shape and a dtype but no storage, so a 6.7-billion-parameter
    model builds in a fraction of a second on a laptop.

    Args:
        build: a zero-argument function returning the model (called inside
            ``with torch.device("meta")``).
    """
    if not callable(build) or isinstance(build, nn.Module):
        raise ValueError(f"build must be a zero-argument function that builds the model (e.g. "
                         f"lambda: DecoderLM(...)), got {type(build).__name__}")
    with torch.device("meta"):
        model = build()
    if not isinstance(model, nn.Module):
        raise ValueError(f"build must return an nn.Module, returned {type(model).__name__}")
    real = [name for name, p in model.named_parameters() if not p.is_meta]
    if real:
        raise ValueError(f"build allocated real parameters (e.g. {real[0]}): create them "
                         "without an explicit device so that they land on 'meta'")
    by_part = {name: count_parameters(child) for name, child in model.named_children()}
    return ModelSize(count_parameters(model), by_part)


def set_trainable(model: nn.Module, trainable: Iterable[nn.Module]) -> int:
    """Freeze every parameter of ``model`` except those of the ``trainable`` submodules.

    Returns:
        The number of trainable parameters afterwards.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    trainable = list(trainable)
    inside = {id(module) for module in model.modules()}
    for module in trainable:
        if not isinstance(module, nn.Module) or id(module) not in inside:
            raise ValueError(f"trainable must list submodules of model, got "
                             f"{type(module).__name__} that is not one")
    model.requires_grad_(False)
    for module in trainable:
        module.requires_grad_(True)
    return count_parameters(model, trainable_only=True)


def llava_training_stage(model: LlavaLikeModel, stage: int) -> int:
    """LLaVA's recipe. Stage 1 (feature alignment): only the projector learns. Stage 2
    (visual instruction tuning): the projector and the language model learn. The vision
    encoder stays frozen in both. Returns the trainable parameter count."""
    if not isinstance(model, LlavaLikeModel):
        raise ValueError(f"model must be a LlavaLikeModel, got {type(model).__name__}")
    if stage not in (1, 2):
        raise ValueError(f"stage must be 1 (projector only) or 2 (projector + LLM), "
                         f"got {stage!r}")
    parts = [model.projector] if stage == 1 else [model.projector, model.language_model]
    return set_trainable(model, parts)


def flamingo_training_stage(model: FlamingoLikeModel) -> int:
    """Flamingo's recipe: vision encoder and language model frozen; only the Perceiver
    resampler and the gated cross-attention blocks learn. Returns the trainable count."""
    if not isinstance(model, FlamingoLikeModel):
        raise ValueError(f"model must be a FlamingoLikeModel, got {type(model).__name__}")
    return set_trainable(model, [model.resampler, model.cross_blocks])


# ============================================================================ discrete tokens
def kmeans(points: Tensor, num_clusters: int, iterations: int = 100, seed: int = 0,
           initial_centroids: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Lloyd's k-means with k-means++ seeding (or the given initial centroids).

    Stops when the centroids no longer change or after ``iterations`` rounds; a cluster that
    loses all its points keeps its previous centroid.

    Shape: points (N, D) -> centroids (K, D), assignments (N,) int64 in [0, K).
    """
    if not isinstance(points, Tensor) or points.dim() != 2 or not points.is_floating_point():
        raise ValueError(f"points must be a float tensor of shape (N, D), got "
                         f"{getattr(points, 'shape', points)}")
    _check_positive_int("num_clusters", num_clusters)
    _check_positive_int("iterations", iterations)
    if num_clusters > len(points):
        raise ValueError(f"num_clusters {num_clusters} exceeds the {len(points)} points")
    if initial_centroids is not None:
        if not isinstance(initial_centroids, Tensor) or tuple(initial_centroids.shape) != (
                num_clusters, points.shape[1]):
            raise ValueError(f"initial_centroids must have shape {(num_clusters, points.shape[1])}"
                             f", got {getattr(initial_centroids, 'shape', initial_centroids)}")
        centroids = initial_centroids.to(points).clone()
    else:
        generator = torch.Generator().manual_seed(seed)
        chosen = [int(torch.randint(len(points), (1,), generator=generator))]
        for _ in range(num_clusters - 1):
            squared = torch.cdist(points, points[chosen]).min(dim=1).values.square()
            if float(squared.sum()) == 0.0:
                raise ValueError(f"num_clusters {num_clusters} exceeds the number of distinct "
                                 f"points ({len(chosen)})")
            chosen.append(int(torch.multinomial(squared.cpu(), 1, generator=generator)))
        centroids = points[chosen].clone()
    for _ in range(iterations):
        assignments = torch.cdist(points, centroids).argmin(dim=1)
        sums = torch.zeros_like(centroids).index_add_(0, assignments, points)
        counts = torch.bincount(assignments, minlength=num_clusters).to(points.dtype)[:, None]
        updated = torch.where(counts > 0, sums / counts.clamp_min(1), centroids)
        if torch.equal(updated, centroids):
            break
        centroids = updated
    return centroids, torch.cdist(points, centroids).argmin(dim=1)


class PatchCodebook:
    """Image patches -> discrete token ids that share one vocabulary with text.

    A natively multimodal model (Gemini, GPT-4o-style) can read *and write* images when
    images are tokens in its vocabulary. Here each ``patch_size`` x ``patch_size`` patch is
    replaced by its nearest codebook vector (k-means over training patches, a tiny stand-in
    for a learned VQ-VAE); code k becomes token id ``text_vocab_size + k``.

    Shape: images (B, C, H, W) -> :meth:`encode` (B, (H/p)(W/p)) ids in
    [text_vocab_size, text_vocab_size + num_codes); :meth:`decode` inverts up to the
    quantisation error.
    """

    def __init__(self, centroids: Tensor, patch_size: int, text_vocab_size: int,
                 in_channels: int = 1) -> None:
        _check_positive_int("patch_size", patch_size)
        _check_positive_int("in_channels", in_channels)
        if isinstance(text_vocab_size, bool) or not isinstance(text_vocab_size, int) or (
                text_vocab_size < 0):
            raise ValueError(f"text_vocab_size must be a non-negative integer, got "
                             f"{text_vocab_size!r}")
        width = in_channels * patch_size * patch_size
        if not isinstance(centroids, Tensor) or centroids.dim() != 2 or (
                centroids.shape[1] != width):
            raise ValueError(f"centroids must have shape (num_codes, {width}) for patch_size "
                             f"{patch_size}, got {getattr(centroids, 'shape', centroids)}")
        self.centroids, self.patch_size = centroids, patch_size
        self.text_vocab_size, self.in_channels = text_vocab_size, in_channels

    @classmethod
    def fit(cls, images: Tensor, num_codes: int, patch_size: int, text_vocab_size: int,
            seed: int = 0) -> PatchCodebook:
        """Learn ``num_codes`` patch prototypes by k-means over every patch of ``images``."""
        if not isinstance(images, Tensor) or images.dim() != 4:
            raise ValueError(f"images must have shape (B, C, H, W), got "
                             f"{getattr(images, 'shape', images)}")
        patches = patchify(images, patch_size).reshape(-1, images.shape[1] * patch_size ** 2)
        centroids, _ = kmeans(patches.float(), num_codes, seed=seed)
        return cls(centroids, patch_size, text_vocab_size, images.shape[1])

    @property
    def num_codes(self) -> int:
        return len(self.centroids)

    @property
    def vocab_size(self) -> int:
        """Text ids, then image ids: the size of the shared vocabulary."""
        return self.text_vocab_size + self.num_codes

    def encode(self, images: Tensor) -> Tensor:
        if not isinstance(images, Tensor) or images.dim() != 4 or (
                images.shape[1] != self.in_channels):
            raise ValueError(f"images must have shape (B, {self.in_channels}, H, W), got "
                             f"{getattr(images, 'shape', images)}")
        patches = patchify(images.to(self.centroids), self.patch_size)  # (B, P, C p p)
        distances = torch.cdist(patches, self.centroids[None].expand(len(patches), -1, -1))
        return distances.argmin(dim=-1) + self.text_vocab_size

    def decode(self, ids: Tensor, grid: tuple[int, int] | None = None) -> Tensor:
        """Images rebuilt from image token ids, patches laid out row by row on ``grid``
        (rows, cols) of patches (default: square)."""
        if not isinstance(ids, Tensor) or ids.dim() != 2 or ids.is_floating_point():
            raise ValueError(f"ids must be integer ids of shape (B, P), got "
                             f"{getattr(ids, 'shape', ids)}")
        codes = ids - self.text_vocab_size
        if ids.numel() and (codes.min() < 0 or codes.max() >= self.num_codes):
            raise ValueError(f"ids must be image tokens in [{self.text_vocab_size}, "
                             f"{self.vocab_size}), got {int(ids.min())}..{int(ids.max())}")
        side = math.isqrt(ids.shape[1])
        rows, cols = grid if grid is not None else (side, side)
        if rows * cols != ids.shape[1]:
            raise ValueError(f"grid {(rows, cols)} does not hold {ids.shape[1]} patches")
        p, c = self.patch_size, self.in_channels
        blocks = self.centroids[codes].reshape(len(ids), rows, cols, c, p, p)
        return blocks.permute(0, 3, 1, 4, 2, 5).reshape(len(ids), c, rows * p, cols * p)


# ============================================================================ gate explorer
@dataclass(frozen=True)
class GateFlow:
    """What a tanh gate lets through for one value of its parameter alpha.

    Shape: hidden, update, output (D,): output = hidden + tanh(alpha) * update.
    ``relative_change`` = ||output - hidden|| / ||hidden||.
    """

    alpha: float
    gate: float
    hidden: Tensor
    update: Tensor
    output: Tensor
    relative_change: float


def gate_flow(alpha: float, hidden: Tensor, update: Tensor) -> GateFlow:
    """h' = h + tanh(alpha) * update, for a text token's hidden state h and the cross-attention
    update that vision offers it. At alpha = 0 nothing flows in; at alpha = 1, 76.16 %.

    Shape: hidden (D,), update (D,) -> :class:`GateFlow`.
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(
            alpha):
        raise ValueError(f"alpha must be a finite number, got {alpha!r}")
    for name, vector in (("hidden", hidden), ("update", update)):
        if not isinstance(vector, Tensor) or vector.dim() != 1:
            raise ValueError(f"{name} must be a vector (D,), got "
                             f"{getattr(vector, 'shape', vector)}")
    if hidden.shape != update.shape:
        raise ValueError(f"hidden {tuple(hidden.shape)} and update {tuple(update.shape)} "
                         "must have the same width")
    gate = math.tanh(alpha)
    output = hidden + gate * update
    change = float((output - hidden).norm() / hidden.norm().clamp_min(1e-12))
    return GateFlow(float(alpha), gate, hidden, update, output, change)


def cross_attention_update(block: GatedCrossAttentionBlock, hidden: Tensor,
                           media: Tensor) -> Tensor:
    """The update a gated block's cross-attention offers, before its gate: CrossAttn(LN(h), v).

    Shape: hidden (B, N, dim), media (B, M, kv_dim) -> (B, N, dim).
    """
    if not isinstance(block, GatedCrossAttentionBlock):
        raise ValueError(f"block must be a GatedCrossAttentionBlock, got {type(block).__name__}")
    return block.cross_attention(block.attention_norm(hidden), media)


def sequence_lengths(text_tokens: int, num_images: int, tokens_per_image: int) -> dict[str, int]:
    """Language-model sequence length with LLaVA-style splicing (grows with each image) and
    Flamingo-style cross-attention (images stay outside the text sequence)."""
    for name, value in (("text_tokens", text_tokens), ("num_images", num_images),
                        ("tokens_per_image", tokens_per_image)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return {"llava": text_tokens + num_images * tokens_per_image, "flamingo": text_tokens}
