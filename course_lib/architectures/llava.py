"""LLaVA: project the patch tokens of a frozen vision encoder and splice them into the text.

    y = LLM([W . ViT(I) ; Embed(T)])

Liu, Li, Wu & Lee (2023), "Visual Instruction Tuning", arXiv:2304.08485 (LLaVA); Liu, Li, Li &
Lee (2023), "Improved Baselines with Visual Instruction Tuning", arXiv:2310.03744 (LLaVA-1.5).

- The vision encoder (CLIP ViT-L/14) is frozen; LLaVA reads its **penultimate** layer's patch
  tokens (``mm_vision_select_layer = -2``) and drops the CLS token: :class:`VisionTower`.
- The projector W is one linear layer in LLaVA, a 2-layer MLP with GELU in LLaVA-1.5
  (``mlp2x_gelu``): :class:`LlavaProjector`.
- The image tokens replace an ``<image>`` placeholder in the text, so the sequence grows with
  every image: :func:`splice_image_tokens`.
- Two training stages, both with the next-token loss on the assistant's words only
  (:func:`instruction_labels`): stage 1, *feature alignment*, trains only the projector on
  image-caption pairs; stage 2, *visual instruction tuning*, trains the projector and the
  language model on question-answer conversations (:func:`llava_training_stage`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from course_lib.architectures._checks import IGNORE_INDEX, _check_positive_int, _check_tokens
from course_lib.architectures.decoder import DecoderLM, scored_next_token_loss
from course_lib.architectures.sizing import set_trainable
from course_lib.vision import ViTEncoder

__all__ = ["VisionTower", "LlavaProjector", "SplicedSequence", "splice_image_tokens",
           "LlavaLikeModel", "llava_training_stage", "instruction_labels"]


class VisionTower(nn.Module):
    """The hidden states of one layer of a ViT, as LLaVA reads its (frozen) CLIP encoder.

    ``select_layer=-2`` (LLaVA's default) returns the output of the second-to-last
    transformer block, before the last block and the final norm; ``drop_cls=True`` keeps the
    patch tokens only.

    Shape: images (B, C, H, W) -> (B, N, vit.dim), N = patches (+ 1 with the CLS token).
    """

    def __init__(self, vit: ViTEncoder, select_layer: int = -2, drop_cls: bool = True) -> None:
        super().__init__()
        if not isinstance(vit, ViTEncoder):
            raise ValueError(f"vit must be a course_lib.vision.ViTEncoder, got "
                             f"{type(vit).__name__}")
        depth = len(vit.blocks)
        if (isinstance(select_layer, bool) or not isinstance(select_layer, int)
                or not -depth <= select_layer < 0):
            raise ValueError(f"select_layer must be a negative index into the {depth} blocks "
                             f"(-1 = last, -2 = penultimate), got {select_layer!r}")
        self.vit, self.select_layer, self.drop_cls = vit, select_layer, drop_cls
        self.dim = vit.dim

    def forward(self, images: Tensor) -> Tensor:
        vit = self.vit
        patch_tokens = vit.patch_embedding(images)  # (B, N, dim)
        cls = vit.cls_token.expand(len(patch_tokens), -1, -1)
        tokens = torch.cat([cls, patch_tokens], dim=1) + vit.position_embedding
        for block in vit.blocks[:len(vit.blocks) + 1 + self.select_layer]:
            tokens = block(tokens)
        return tokens[:, 1:] if self.drop_cls else tokens


def instruction_labels(input_ids: Tensor, answer_starts: Tensor | list[int],
                       attention_mask: Tensor | None = None) -> Tensor:
    """Next-token labels that supervise only the assistant's answer (LLaVA's masking).

    Row b keeps ``input_ids[b, t]`` as label for t >= ``answer_starts[b]``; every position of
    the user turn (t < answer_start), and padding, gets -100, which the loss skips.

    Shape: input_ids (B, T), answer_starts (B,), attention_mask (B, T) bool -> labels (B, T).
    """
    if not isinstance(input_ids, Tensor) or input_ids.dim() != 2 or input_ids.is_floating_point():
        raise ValueError(f"input_ids must be integer ids of shape (B, T), got "
                         f"{getattr(input_ids, 'shape', input_ids)}")
    starts = torch.as_tensor(answer_starts, device=input_ids.device)
    if starts.shape != input_ids.shape[:1] or starts.is_floating_point():
        raise ValueError(f"answer_starts must hold one integer position per row "
                         f"({input_ids.shape[0]},), got {tuple(starts.shape)}")
    if bool(((starts < 0) | (starts >= input_ids.shape[1])).any()):
        raise ValueError(f"answer_starts must lie in [0, {input_ids.shape[1]}) (T), got "
                         f"{starts.tolist()}")
    positions = torch.arange(input_ids.shape[1], device=input_ids.device)
    keep = positions[None] >= starts[:, None]
    if attention_mask is not None:
        if not isinstance(attention_mask, Tensor) or attention_mask.shape != input_ids.shape:
            raise ValueError(f"attention_mask must have shape {tuple(input_ids.shape)}, got "
                             f"{getattr(attention_mask, 'shape', attention_mask)}")
        keep = keep & attention_mask.bool()
    return input_ids.long().masked_fill(~keep, IGNORE_INDEX)


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
        image_features = _check_tokens("image_features", image_features, self.vision_dim, self)
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
    image_tokens = _check_tokens("image_tokens", image_tokens, width)
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
    # Where each input position lands: every earlier placeholder shifted it by N - 1.
    earlier = is_placeholder.long().cumsum(dim=1) - is_placeholder.long()  # (B, T)
    landing = torch.arange(length, device=device) + earlier * (image_length - 1)  # (B, T)
    row_lengths = length + is_placeholder.sum(dim=1) * (image_length - 1)  # (B,)
    total = int(row_lengths.max())
    embeddings = text_embeddings.new_zeros(batch, total, width)
    out_mask = torch.zeros(batch, total, dtype=torch.bool, device=device)
    out_labels = torch.full((batch, total), IGNORE_INDEX, dtype=torch.long, device=device)
    out_image = torch.zeros(batch, total, dtype=torch.bool, device=device)
    rows, positions = (~is_placeholder).nonzero(as_tuple=True)  # the text tokens
    targets = landing[rows, positions]
    embeddings[rows, targets] = text_embeddings[rows, positions]
    out_mask[rows, targets] = attention_mask[rows, positions].bool()
    out_labels[rows, targets] = labels[rows, positions].long()
    rows, positions = is_placeholder.nonzero(as_tuple=True)  # reading order: row by row
    offsets = torch.arange(image_length, device=device)
    image_rows = rows[:, None].expand(-1, image_length)  # (I, N)
    image_targets = landing[rows, positions][:, None] + offsets  # (I, N)
    embeddings[image_rows, image_targets] = image_tokens.to(text_embeddings.dtype)
    out_mask[image_rows, image_targets] = True
    out_image[image_rows, image_targets] = True
    out_labels = out_labels.masked_fill(~out_mask, IGNORE_INDEX)
    return SplicedSequence(embeddings, out_mask, out_labels, out_image)


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

    def loss(self, images: Tensor, input_ids: Tensor, labels: Tensor) -> Tensor:
        """Next-token cross-entropy over the spliced sequence; image tokens and every label
        -100 (e.g. the user turn, see :func:`instruction_labels`) are skipped.

        Shape: images as in :meth:`forward`, input_ids and labels (B, T) -> scalar.
        """
        lm = self.language_model
        spliced = splice_image_tokens(lm.embed(input_ids), input_ids, self.image_tokens(images),
                                      self.image_token_id, labels)
        hidden = lm.hidden_states(spliced.embeddings, spliced.attention_mask)
        return scored_next_token_loss(hidden, lm.head, spliced.labels)

    @torch.no_grad()
    def generate(self, images: Tensor, input_ids: Tensor, max_new_tokens: int = 4,
                 eos_id: int | None = None) -> Tensor:
        """Greedy decoding after a prompt that holds the ``<image>`` placeholder(s); every row
        has the same prompt length (no padding).

        Rows that produced ``eos_id`` keep producing it; decoding stops once every row has.

        Shape: images as in :meth:`forward`, input_ids (B, T) -> (B, <= max_new_tokens).
        """
        _check_positive_int("max_new_tokens", max_new_tokens)
        image_tokens = self.image_tokens(images)
        generated = input_ids[:, :0]
        finished = torch.zeros(len(input_ids), dtype=torch.bool, device=input_ids.device)
        for _ in range(max_new_tokens):
            ids = torch.cat([input_ids, generated], dim=1)
            spliced = splice_image_tokens(self.language_model.embed(ids), ids, image_tokens,
                                          self.image_token_id)
            logits = self.language_model.forward_embeddings(spliced.embeddings,
                                                            spliced.attention_mask)
            next_ids = logits[:, -1].argmax(dim=-1)
            if eos_id is not None:
                next_ids = next_ids.masked_fill(finished, eos_id)
                finished = finished | (next_ids == eos_id)
            generated = torch.cat([generated, next_ids[:, None]], dim=1)
            if eos_id is not None and bool(finished.all()):
                break
        return generated


def llava_training_stage(model: LlavaLikeModel, stage: int) -> int:
    """LLaVA's recipe. Stage 1 (feature alignment): only the projector learns. Stage 2
    (visual instruction tuning): the projector and the language model learn. The vision
    encoder stays frozen in both (LLaVA, arXiv:2304.08485, section 4.2). Returns the
    trainable parameter count."""
    if not isinstance(model, LlavaLikeModel):
        raise ValueError(f"model must be a LlavaLikeModel, got {type(model).__name__}")
    if stage not in (1, 2):
        raise ValueError(f"stage must be 1 (projector only) or 2 (projector + LLM), "
                         f"got {stage!r}")
    parts = [model.projector] if stage == 1 else [model.projector, model.language_model]
    return set_trainable(model, parts)
