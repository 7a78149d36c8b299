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

from course_lib._validation import (
    ArgumentTypeError,
    check_allocation,
    check_choice,
    check_flag,
    check_int,
    check_tensor,
    to_weights_dtype,
)
from course_lib.architectures._checks import (
    IGNORE_INDEX,
    _check_id,
    _check_ids,
    _check_module,
    _check_new_tokens,
    _check_positive_int,
    _check_tokens,
    _check_weights,
)
from course_lib.architectures._generation import greedy_decode
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
        vit = _check_module("vit", vit, ViTEncoder)
        depth = len(vit.blocks)
        select_layer = check_int("select_layer", select_layer)
        if not -depth <= select_layer < 0:
            raise ValueError(f"select_layer must be a negative index into the {depth} blocks "
                             f"(-1 = last, -2 = penultimate), got {select_layer!r}")
        drop_cls = check_flag("drop_cls", drop_cls)
        self.vit, self.select_layer, self.drop_cls = vit, select_layer, drop_cls
        self.dim = vit.dim

    def forward(self, images: Tensor) -> Tensor:
        """images (B, C, H, W) -> (B, N, dim) hidden states of the selected layer."""
        images = to_weights_dtype("images", images, self, ndim=4)
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
    input_ids = _check_ids("input_ids", input_ids)
    if isinstance(answer_starts, (list, tuple)):
        if any(isinstance(v, bool) or not isinstance(v, int) for v in answer_starts):
            raise ArgumentTypeError(f"answer_starts must hold integer positions, got "
                                    f"{answer_starts!r:.80}")
        answer_starts = torch.tensor(answer_starts, dtype=torch.long)
    starts = check_tensor("answer_starts", answer_starts, kind="int", ndim=1)
    starts = starts.to(input_ids.device)
    if starts.shape != input_ids.shape[:1]:
        raise ValueError(f"answer_starts must hold one integer position per row "
                         f"({input_ids.shape[0]},), got {tuple(starts.shape)}")
    if bool(((starts < 0) | (starts >= input_ids.shape[1])).any()):
        raise ValueError(f"answer_starts must lie in [0, {input_ids.shape[1]}) (T), got "
                         f"{starts.tolist()}")
    positions = torch.arange(input_ids.shape[1], device=input_ids.device)
    keep = positions[None] >= starts[:, None]
    if attention_mask is not None:
        keep = keep & _check_attention_mask(attention_mask, tuple(input_ids.shape))
    return input_ids.long().masked_fill(~keep, IGNORE_INDEX)


def _check_attention_mask(mask: object, shape: tuple[int, ...]) -> Tensor:
    """A (B, T) mask of real tokens: bool, or integers 0/1 (as tokenizers return it)."""
    mask = check_tensor("attention_mask", mask, kind=None, ndim=len(shape))
    if mask.is_floating_point() or mask.is_complex():
        raise ArgumentTypeError(f"attention_mask must be a bool (or 0/1 integer) tensor, got "
                                f"dtype {mask.dtype}: convert it with .bool()")
    if tuple(mask.shape) != shape:
        raise ValueError(f"attention_mask must have shape {shape} like input_ids, got "
                         f"{tuple(mask.shape)}")
    if mask.dtype != torch.bool and mask.numel() and bool(((mask != 0) & (mask != 1)).any()):
        raise ValueError("attention_mask must hold only 0 and 1 (or False and True)")
    return mask.bool()


class LlavaProjector(nn.Module):
    """LLaVA's projector W from the vision encoder's width to the language model's width.

    ``kind="linear"`` (LLaVA 1.0): one ``nn.Linear``. ``kind="mlp"`` (LLaVA 1.5's
    ``mlp2x_gelu``): Linear -> GELU -> Linear.

    Shape: image_features (B, N, vision_dim) -> (B, N, llm_dim).
    """

    KINDS = ("linear", "mlp")

    def __init__(self, vision_dim: int, llm_dim: int, kind: str = "mlp") -> None:
        super().__init__()
        vision_dim = _check_positive_int("vision_dim", vision_dim)
        llm_dim = _check_positive_int("llm_dim", llm_dim)
        kind = check_choice("kind", kind, self.KINDS)
        _check_weights("vision_dim * llm_dim", vision_dim * llm_dim)
        _check_weights("llm_dim * llm_dim", llm_dim * llm_dim)
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
    dims: dict = {}
    text_embeddings = check_tensor("text_embeddings", text_embeddings, shape=("B", "T", "D"),
                                   dims=dims)
    batch, length, width = text_embeddings.shape
    input_ids = _check_ids("input_ids", input_ids, dims=dims)
    image_tokens = _check_tokens("image_tokens", image_tokens, width)
    image_token_id = check_int("image_token_id", image_token_id)
    if labels is not None:
        labels = check_tensor("labels", labels, shape=("B", "T"), kind="int", dims=dims)
    if attention_mask is not None:
        attention_mask = _check_attention_mask(attention_mask, (batch, length))
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
    total = int(row_lengths.max()) if batch else length
    check_allocation("image_tokens", batch * total * width)
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
        _check_module("vision_encoder", vision_encoder, optional=True)
        language_model = _check_module("language_model", language_model, DecoderLM)
        image_token_id = _check_id("image_token_id", image_token_id, language_model.vocab_size)
        drop_cls_token = check_flag("drop_cls_token", drop_cls_token)
        self.vision_encoder = vision_encoder
        self.projector = LlavaProjector(vision_dim, language_model.dim, projector_kind)
        self.language_model = language_model
        self.image_token_id, self.drop_cls_token = image_token_id, drop_cls_token

    def image_tokens(self, images: Tensor) -> Tensor:
        """The projected visual tokens (I, N, llm_dim) of ``images`` (or of precomputed
        features (I, N', vision_dim) when the model has no vision encoder)."""
        if self.vision_encoder is None:
            features = _check_tokens("images", images, self.projector.vision_dim)
        else:
            features = self.vision_encoder(check_tensor("images", images, min_ndim=1))
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
        lm = self.language_model
        input_ids = _check_ids("input_ids", input_ids, lm.vocab_size)
        _check_new_tokens(max_new_tokens)  # before the vision encoder runs
        image_tokens = self.image_tokens(images)

        def next_token_logits(ids: Tensor) -> Tensor:
            spliced = splice_image_tokens(lm.embed(ids), ids, image_tokens, self.image_token_id)
            return lm.forward_embeddings(spliced.embeddings, spliced.attention_mask)[:, -1]

        return greedy_decode(next_token_logits, input_ids, max_new_tokens, eos_id,
                             lm.vocab_size)


def llava_training_stage(model: LlavaLikeModel, stage: int) -> int:
    """LLaVA's recipe. Stage 1 (feature alignment): only the projector learns. Stage 2
    (visual instruction tuning): the projector and the language model learn. The vision
    encoder stays frozen in both (LLaVA, arXiv:2304.08485, section 4.2). Returns the
    trainable parameter count."""
    _check_module("model", model, LlavaLikeModel)
    stage = check_int("stage", stage)
    if stage not in (1, 2):
        raise ValueError(f"stage must be 1 (projector only) or 2 (projector + LLM), "
                         f"got {stage!r}")
    parts = [model.projector] if stage == 1 else [model.projector, model.language_model]
    return set_trainable(model, parts)
