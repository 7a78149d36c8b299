"""Flamingo: a frozen language model reads resampled images through gated cross-attention.

Alayrac et al. (2022), "Flamingo: a Visual Language Model for Few-Shot Learning",
arXiv:2204.14198.

- A Perceiver resampler turns each image's visual tokens into its own fixed set of latents
  (64 in Flamingo): :class:`PerceiverResampler`, :meth:`PerceiverResampler.resample_images`.
- The text keeps one ``<image>`` marker per image; a text token cross-attends only to the
  latents of the most recent image at or before it (Flamingo's per-image masking), and
  tokens before the first image read no image at all: :func:`media_attention_mask`.
- Gated cross-attention blocks, h' = h + tanh(alpha) * CrossAttn(h, v), then a gated
  feed-forward, sit before the frozen LM layers; alpha starts at 0, so the untrained model is
  exactly the language model. Flamingo-3B has one before every LM layer, Flamingo-9B before
  every 4th, Flamingo-80B before every 7th (``cross_every``).
- Only the resampler and the gated blocks train; the vision encoder and the language model
  stay frozen (:func:`flamingo_training_stage`). The objective is the next-token loss on the
  text of interleaved image-text data.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from course_lib._validation import MAX_TOKENS, check_allocation, check_number, check_tensor
from course_lib.architectures._checks import (
    IGNORE_INDEX,
    MAX_DEPTH,
    _check_id,
    _check_ids,
    _check_mask,
    _check_module,
    _check_positive_int,
    _check_tokens,
    _check_weights,
)
from course_lib.architectures._generation import greedy_decode
from course_lib.architectures.decoder import DecoderLM, scored_next_token_loss
from course_lib.architectures.sizing import set_trainable
from course_lib.attention import FeedForward, GatedCrossAttentionBlock, MultiHeadCrossAttention

__all__ = ["PerceiverResampler", "media_attention_mask", "FlamingoLikeModel",
           "flamingo_training_stage", "gate_values"]


class PerceiverResampler(nn.Module):
    """Flamingo's Perceiver resampler: learned latents read any number of media tokens.

    Each layer lets the latents attend to the concatenation [media; latents] (keys and values),
    then applies a feed-forward network, both with residual connections. However many media
    tokens come in (1 or 577), ``num_latents`` tokens go out. (Flamingo also adds a learned
    time embedding per video frame; a single image does not need it.) Several images are
    resampled each on its own by :meth:`resample_images`.

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
        dim = _check_positive_int("dim", dim)
        num_latents = _check_positive_int("num_latents", num_latents, MAX_TOKENS)
        depth = _check_positive_int("depth", depth, MAX_DEPTH)
        num_heads = _check_positive_int("num_heads", num_heads)
        ff_mult = _check_positive_int("ff_mult", ff_mult)
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        _check_weights("depth * dim * dim", depth * dim * dim * (4 + 2 * ff_mult))
        _check_weights("num_latents * dim", num_latents * dim)
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
        media = _check_tokens("media", media, self.dim, self)
        batch, num_media = media.shape[:2]
        if num_media < 1:
            raise ValueError("media must hold at least one token (M >= 1)")
        latents = self.latents.expand(batch, -1, -1)  # (B, R, dim)
        context_mask = None
        if media_mask is not None:
            media_mask = _check_mask("media_mask", media_mask, (batch, num_media))
            keep_latents = media_mask.new_ones(batch, self.num_latents)
            context_mask = torch.cat([media_mask, keep_latents], dim=1)  # (B, M + R)
        for layer in self.layers:
            queries = layer["latent_norm"](latents)
            context = torch.cat([layer["media_norm"](media), queries], dim=1)  # (B, M + R, dim)
            latents = latents + layer["attention"](queries, context, context_mask=context_mask)
            latents = latents + layer["feed_forward"](layer["feed_forward_norm"](latents))
        return self.final_norm(latents)

    def resample_images(self, media: Tensor, media_mask: Tensor | None = None) -> Tensor:
        """Resample each image separately: its own ``num_latents`` latents, as in Flamingo.

        Shape: media (B, I, M, dim), media_mask (B, I, M) bool -> (B, I, num_latents, dim).
        """
        media = check_tensor("media", media, shape=("B", "num_images", "M", self.dim))
        batch, num_images, num_media, width = media.shape
        flat_mask = None
        if media_mask is not None:
            media_mask = _check_mask("media_mask", media_mask, (batch, num_images, num_media))
            flat_mask = media_mask.reshape(batch * num_images, num_media)
        latents = self(media.reshape(batch * num_images, num_media, width), flat_mask)
        return latents.reshape(batch, num_images, self.num_latents, width)


def media_attention_mask(input_ids: Tensor, media_token_id: int, num_images: int,
                         num_latents: int) -> tuple[Tensor, Tensor]:
    """Which visual latents each text token may cross-attend to (Flamingo's per-image mask).

    Token t of row b belongs to image k = (number of ``<image>`` markers at positions <= t);
    it may attend to the ``num_latents`` latents of image k only (image 1 = the first marker),
    and to nothing if k = 0 (no image yet).

    Returns:
        allowed: (B, T, num_images * num_latents) bool, True = may attend;
        has_image: (B, T) bool, True where the token has an image to read.
    """
    input_ids = _check_ids("input_ids", input_ids)
    media_token_id = _check_id("media_token_id", media_token_id)
    num_images = _check_positive_int("num_images", num_images, MAX_TOKENS)
    num_latents = _check_positive_int("num_latents", num_latents, MAX_TOKENS)
    check_allocation("num_latents", input_ids.numel() * num_images * num_latents)
    image_index = (input_ids == media_token_id).long().cumsum(dim=1)  # (B, T), 0 = no image yet
    most = int(image_index[:, -1].max()) if input_ids.numel() else 0
    if most > num_images:
        raise ValueError(f"input_ids holds up to {most} <image> markers (id {media_token_id}) "
                         f"in a row, but only {num_images} image(s) per row were given")
    latent_image = torch.arange(num_images, device=input_ids.device).repeat_interleave(
        num_latents) + 1  # (I * R,): which image each latent belongs to, 1-based
    allowed = image_index[:, :, None] == latent_image[None, None, :]
    return allowed, image_index > 0


class FlamingoLikeModel(nn.Module):
    """Frozen LM layers interleaved with gated cross-attention to resampled visual latents.

    Before every ``cross_every``-th LM layer a gated cross-attention block
    (:class:`~course_lib.attention.GatedCrossAttentionBlock`) lets the text read the visual
    latents. The text sequence keeps its length whatever the number of images.

    Args:
        vision_encoder: maps images (N, C, H, W) to (N, M, vision_dim) tokens; ``None`` means
            the caller passes precomputed visual features.
        vision_dim: width of the visual tokens (and of the resampler's latents).
        language_model: a :class:`~course_lib.architectures.decoder.DecoderLM`.
        num_latents, resampler_depth, num_heads: of the resampler (and heads of the blocks).
        cross_every: a gated block before LM layers 0, cross_every, 2 cross_every, ...
        media_token_id: the ``<image>`` marker id. With it, each text token reads only the
            latents of the most recent image (:func:`media_attention_mask`); without it
            (``None``) every token reads every image's latents.

    Shape:
        media: (B, I, M, vision_dim) features of I images per row, or (B, M, vision_dim) for
        one (with ``vision_encoder``: images (B, I, C, H, W) or (B, C, H, W));
        media_mask: (B, I, M) or (B, M) bool, True = a real visual token;
        input_ids: (B, T) -> logits (B, T, vocab_size).
    """

    def __init__(self, vision_encoder: nn.Module | None, vision_dim: int,
                 language_model: DecoderLM, num_latents: int = 64, resampler_depth: int = 2,
                 num_heads: int = 8, cross_every: int = 1,
                 media_token_id: int | None = None) -> None:
        super().__init__()
        cross_every = _check_positive_int("cross_every", cross_every)
        _check_module("vision_encoder", vision_encoder, optional=True)
        language_model = _check_module("language_model", language_model, DecoderLM)
        media_token_id = _check_id("media_token_id", media_token_id, language_model.vocab_size,
                                   optional=True)
        self.vision_encoder = vision_encoder
        self.resampler = PerceiverResampler(vision_dim, num_latents, resampler_depth, num_heads)
        self.language_model = language_model
        self.cross_every, self.media_token_id = cross_every, media_token_id
        count = math.ceil(len(language_model.blocks) / cross_every)
        self.cross_blocks = nn.ModuleList(
            GatedCrossAttentionBlock(language_model.dim, num_heads, kv_dim=vision_dim)
            for _ in range(count))

    def image_latents(self, media: Tensor, media_mask: Tensor | None = None) -> Tensor:
        """Each image's own latents, (B, I, num_latents, vision_dim)."""
        if self.vision_encoder is not None:
            media = check_tensor("media", media, ndim=(4, 5))
            if media.dim() == 4:
                media = media[:, None]  # one image per row
            if media.dim() != 5:
                raise ValueError(f"images must have shape (B, I, C, H, W) or (B, C, H, W), got "
                                 f"{tuple(media.shape)}")
            batch, num_images = media.shape[:2]
            features = self.vision_encoder(media.flatten(0, 1))
            features = features.reshape(batch, num_images, *features.shape[1:])
        else:
            media = check_tensor("media", media, ndim=(3, 4))
            features = media[:, None] if media.dim() == 3 else media
        if media_mask is not None:
            media_mask = check_tensor("media_mask", media_mask, kind="bool", ndim=(2, 3))
            if media_mask.dim() == 2:
                media_mask = media_mask[:, None]
        return self.resampler.resample_images(features, media_mask)

    def labels(self, input_ids: Tensor) -> Tensor:
        """Next-token labels: every text token, with -100 at the ``<image>`` markers."""
        input_ids = _check_ids("input_ids", input_ids, self.language_model.vocab_size)
        if self.media_token_id is None:
            return input_ids.long()
        return input_ids.long().masked_fill(input_ids == self.media_token_id, IGNORE_INDEX)

    def _gated_block(self, block: GatedCrossAttentionBlock, tokens: Tensor, latents: Tensor,
                     allowed: Tensor | None, has_image: Tensor | None,
                     alpha_scale: float) -> Tensor:
        normed = block.attention_norm(tokens)
        if allowed is None:
            attended = block.cross_attention(normed, latents)
        else:  # a token with no image yet attends anywhere, then its update is zeroed
            safe = allowed | ~has_image[..., None]
            attended = block.cross_attention(normed, latents, attention_mask=safe)
            attended = attended * has_image[..., None].to(attended.dtype)
        tokens = tokens + torch.tanh(alpha_scale * block.attn_gate) * attended
        feed_forward = block.feed_forward(block.feed_forward_norm(tokens))
        return tokens + torch.tanh(alpha_scale * block.ff_gate) * feed_forward

    def forward(self, media: Tensor, input_ids: Tensor, media_mask: Tensor | None = None,
                alpha_scale: float = 1.0) -> Tensor:
        """Logits (B, T, vocab_size). ``alpha_scale`` multiplies every gate's alpha (1 = as
        trained, 0 = every gate closed: the language model alone)."""
        lm = self.language_model
        return lm.head(self.hidden_states(media, input_ids, media_mask, alpha_scale))

    def hidden_states(self, media: Tensor, input_ids: Tensor, media_mask: Tensor | None = None,
                      alpha_scale: float = 1.0) -> Tensor:
        """The final (normalised) hidden state of every text position, (B, T, dim)."""
        alpha_scale = check_number("alpha_scale", alpha_scale)
        lm = self.language_model
        tokens = lm.embed(input_ids)
        latents = self.image_latents(media, media_mask)  # (B, I, R, vision_dim)
        batch, num_images, num_latents, width = latents.shape
        if len(input_ids) != batch:
            raise ValueError(f"media has batch size {batch} but input_ids has {len(input_ids)}")
        allowed = has_image = None
        if self.media_token_id is not None:
            allowed, has_image = media_attention_mask(input_ids, self.media_token_id,
                                                      num_images, num_latents)
        flat = latents.reshape(batch, num_images * num_latents, width)
        for index, block in enumerate(lm.blocks):
            if index % self.cross_every == 0:
                tokens = self._gated_block(self.cross_blocks[index // self.cross_every], tokens,
                                           flat, allowed, has_image, float(alpha_scale))
            tokens = block(tokens)
        return lm.final_norm(tokens)

    def loss(self, media: Tensor, input_ids: Tensor, labels: Tensor | None = None) -> Tensor:
        """Next-token cross-entropy on the text (default labels: :meth:`labels`)."""
        input_ids = _check_ids("input_ids", input_ids, self.language_model.vocab_size)
        labels = self.labels(input_ids) if labels is None else labels
        labels = check_tensor("labels", labels, kind="int", ndim=2)
        if labels.shape != input_ids.shape:
            raise ValueError(f"labels must have the shape of input_ids {tuple(input_ids.shape)}, "
                             f"got {tuple(labels.shape)}")
        hidden = self.hidden_states(media, input_ids)
        return scored_next_token_loss(hidden, self.language_model.head, labels)

    @torch.no_grad()
    def generate(self, media: Tensor, input_ids: Tensor, max_new_tokens: int = 4,
                 eos_id: int | None = None, alpha_scale: float = 1.0) -> Tensor:
        """Greedy decoding after a prompt (all rows the same length, no padding).

        Shape: media as in :meth:`forward`, input_ids (B, T) -> (B, <= max_new_tokens).
        """
        input_ids = _check_ids("input_ids", input_ids, self.language_model.vocab_size)
        alpha_scale = check_number("alpha_scale", alpha_scale)
        return greedy_decode(lambda ids: self(media, ids, alpha_scale=alpha_scale)[:, -1],
                             input_ids, max_new_tokens, eos_id, self.language_model.vocab_size)


def flamingo_training_stage(model: FlamingoLikeModel) -> int:
    """Flamingo's recipe: vision encoder and language model frozen; only the Perceiver
    resampler and the gated cross-attention blocks learn. Returns the trainable count."""
    _check_module("model", model, FlamingoLikeModel)
    return set_trainable(model, [model.resampler, model.cross_blocks])


def gate_values(model: FlamingoLikeModel) -> dict[str, list[float]]:
    """tanh(alpha) of every gated block: ``{"attention": [...], "feed_forward": [...]}``."""
    _check_module("model", model, FlamingoLikeModel)
    return {"attention": [math.tanh(b.attn_gate.detach().item()) for b in model.cross_blocks],
            "feed_forward": [math.tanh(b.ff_gate.detach().item()) for b in model.cross_blocks]}
