"""Contrastive alignment (CLIP-style InfoNCE): the loss, a learnable logit scale, and metrics.

Two encoders map paired items (an image and the clip of its spoken digit, say) into one
shared space. The similarity matrix S (N, N) holds the cosine similarity of item i of modality
A with item j of modality B; matching pairs sit on the diagonal. Dividing by a temperature tau
and taking a softmax along each row gives "which B matches this A?"; along each column, "which
A matches this B?". The loss is the cross-entropy of the diagonal, averaged over both
directions (CLIP's symmetric loss). Matching is then nearest-neighbour search: retrieval
(recall@k) and zero-shot classification against one prompt embedding per class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_lib._validation import (
    MAX_ELEMENTS,
    ArgumentTypeError,
    check_allocation,
    check_flag,
    check_int,
    check_number,
    check_tensor,
    describe,
)
from course_lib.projection import Projection

# The worked example of the course (N = 3 pairs, tau = 0.1): rows are images, columns texts.
WORKED_SIMILARITY = ((0.9, 0.2, 0.1), (0.3, 0.8, 0.2), (0.1, 0.1, 0.7))
WORKED_TEMPERATURE = 0.1


def _check_similarity(similarity: Any, name: str = "similarity") -> torch.Tensor:
    similarity = check_tensor(name, similarity, finite=True)
    if similarity.ndim != 2 or similarity.shape[0] != similarity.shape[1]:
        raise ValueError(
            f"{name} must be a square (N, N) matrix (row i = item i of A against all of B), "
            f"got shape {tuple(similarity.shape)}"
        )
    if similarity.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one pair, got shape (0, 0)")
    return similarity


def _check_temperature(temperature: Any, name: str = "temperature") -> None:
    if isinstance(temperature, (torch.Tensor, np.ndarray)):
        value = check_tensor(name, temperature, kind="float").detach()
        if value.numel() != 1:
            raise ValueError(f"{name} must be a scalar, got shape {tuple(value.shape)}")
        if value.device.type == "meta":
            return
        number = float(value)
    elif isinstance(temperature, (bool, np.bool_)) or not isinstance(temperature, (int, float,
                                                                                   np.number)):
        raise ArgumentTypeError(f"{name} must be a number > 0 or a scalar tensor, got "
                                f"{describe(temperature)}")
    else:
        number = float(temperature)
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {number}")


def _check_features(features: Any, name: str) -> torch.Tensor:
    if not isinstance(features, (torch.Tensor, np.ndarray)) or features.ndim != 2:
        shape = tuple(features.shape) if isinstance(features, (torch.Tensor, np.ndarray)) \
            else describe(features)
        raise ValueError(f"{name} must be a (N, D) tensor, got {shape}")
    features = check_tensor(name, features, finite=True)
    norms = features.detach().norm(dim=-1)
    if features.device.type != "meta" and (norms == 0).any():
        rows = torch.nonzero(norms == 0).flatten().tolist()
        raise ValueError(
            f"{name} has zero-norm feature vector(s) at row(s) {rows[:5]}: cosine similarity "
            "is undefined for them"
        )
    return features


def cosine_similarity_matrix(features_a: torch.Tensor, features_b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of every row of ``features_a`` with every row of ``features_b``.

    Shape:
        features_a: (N, D); features_b: (M, D); returns (N, M), values in [-1, 1].
    """
    features_a = _check_features(features_a, "features_a")
    features_b = _check_features(features_b, "features_b")
    if features_a.dtype != features_b.dtype:
        common = torch.promote_types(features_a.dtype, features_b.dtype)
        features_a, features_b = features_a.to(common), features_b.to(common)
    if features_a.shape[1] != features_b.shape[1]:
        raise ValueError(
            f"features_a has width {features_a.shape[1]} but features_b has width "
            f"{features_b.shape[1]}: both must live in the same shared space"
        )
    return F.normalize(features_a, dim=-1) @ F.normalize(features_b, dim=-1).T


def contrastive_loss(
    similarity: torch.Tensor, temperature: float | torch.Tensor, symmetric: bool = True
) -> torch.Tensor:
    """InfoNCE loss of a similarity matrix whose matching pairs lie on the diagonal.

    L_A->B = -(1/N) sum_i log softmax_j(S_ij / tau)[i]  (rows); L_B->A uses the columns.

    Args:
        similarity: cosine similarities, row i = item i of modality A against all of B.
        temperature: tau > 0 (a float, or a scalar tensor such as ``1 / logit_scale``).
        symmetric: True averages both directions (CLIP); False gives the rows-only A->B loss.

    Shape:
        similarity: (N, N); returns a scalar tensor.
    """
    similarity = _check_similarity(similarity)
    _check_temperature(temperature)
    check_flag("symmetric", symmetric)
    logits = similarity / temperature
    labels = torch.arange(similarity.shape[0], device=similarity.device)
    rows = -logits.log_softmax(dim=1).gather(1, labels[:, None]).mean()
    if not symmetric:
        return rows
    columns = -logits.log_softmax(dim=0).gather(0, labels[None, :]).mean()
    return (rows + columns) / 2


def clip_loss(
    features_a: torch.Tensor, features_b: torch.Tensor, temperature: float | torch.Tensor
) -> torch.Tensor:
    """CLIP's symmetric loss: L2-normalise both batches, compare all pairs, apply InfoNCE.

    Shape:
        features_a: (N, D) paired row by row with features_b: (N, D); returns a scalar.
    """
    if isinstance(features_a, (torch.Tensor, np.ndarray)) and \
            isinstance(features_b, (torch.Tensor, np.ndarray)):
        if features_a.shape[:1] != features_b.shape[:1]:
            raise ValueError(
                f"features_a and features_b must hold the same number of pairs, got batch "
                f"sizes {features_a.shape[0]} and {features_b.shape[0]}"
            )
    return contrastive_loss(cosine_similarity_matrix(features_a, features_b), temperature)


class LogitScale(nn.Module):
    """CLIP's learnable inverse temperature: scale = exp(log_scale), kept <= ``max_scale``.

    The parameter starts at ln(1 / init_temperature) (ln(1/0.07) = 2.6593, scale 14.2857).
    ``forward`` only reads it: it returns exp(log_scale) and never changes the parameter.
    The bound is enforced by :meth:`clamp_`, which the training loop calls right after every
    optimiser step (as OpenCLIP's training loop clamps ``logit_scale`` after
    ``optimizer.step()``). Projecting the parameter keeps d scale / d log_scale = scale at
    every step; a ``clamp`` inside the graph would instead give a zero gradient above the
    bound, so a parameter that drifted there could never come back.

    Shape:
        returns a scalar tensor; use ``similarity * logit_scale()`` or ``1 / logit_scale()``.
    """

    def __init__(self, init_temperature: float = 0.07, max_scale: float = 100.0) -> None:
        super().__init__()
        init_temperature = check_number("init_temperature", init_temperature, above=0)
        max_scale = check_number("max_scale", max_scale, above=0)
        if 1.0 / init_temperature > max_scale:
            raise ValueError(
                f"init_temperature {init_temperature} gives scale {1 / init_temperature:.4g}, "
                f"above max_scale {max_scale}"
            )
        self.max_scale = float(max_scale)
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)))

    def forward(self) -> torch.Tensor:
        """The scale exp(log_scale), a scalar tensor (reads the parameter, never changes it)."""
        return self.log_scale.exp()

    @torch.no_grad()
    def clamp_(self) -> LogitScale:
        """Project the stored log-scale onto (-inf, ln max_scale], in place; returns ``self``.

        Call it after each ``optimizer.step()`` (e.g. from the ``on_step`` hook of
        :func:`course_lib.train.train`).
        """
        self.log_scale.clamp_(max=math.log(self.max_scale))
        return self

    def extra_repr(self) -> str:
        """The cap, shown in ``repr(module)``."""
        return f"max_scale={self.max_scale}"


def _pooled(name: str, features: Any, batch: int) -> torch.Tensor:
    """An encoder's output as one vector per item: (B, D) as is, (B, T, D) averaged over T."""
    features = check_tensor(name, features, ndim=(2, 3))
    if features.shape[0] != batch:
        raise ValueError(f"{name} has {features.shape[0]} rows for a batch of {batch}")
    return features.mean(dim=1) if features.ndim == 3 else features


def _encoder_width(name: str, encoder: nn.Module, width: int | None) -> int:
    if width is not None:
        return check_int(f"{name}_dim", width, minimum=1)
    found = getattr(encoder, "dim", None)
    if isinstance(found, bool) or not isinstance(found, int):
        raise ValueError(f"{name}_dim is needed: {name}_encoder ({type(encoder).__name__}) has "
                         f"no integer attribute dim, got {describe(found)}")
    return check_int(f"{name}_encoder.dim", found, minimum=1)


class DualEncoder(nn.Module):
    """A CLIP-style dual encoder: an image encoder and an audio encoder, each followed by a
    :class:`~course_lib.projection.Projection` into one shared width, and a :class:`LogitScale`.

    The two towers never see each other's input; they meet only in the cosine similarity of
    their embeddings (late interaction). An encoder may return one vector per item (B, D),
    such as a ViT's CLS vector, or tokens (B, T, D), which are averaged over T (the mean over
    time of an audio encoder's tokens).

    Args:
        image_encoder: maps a batch of images to (B, D_image) or (B, T, D_image).
        audio_encoder: maps a batch of log-mel spectrograms to (B, D_audio) or (B, T, D_audio).
        embed_dim: width E of the shared space.
        image_dim, audio_dim: D_image and D_audio; by default the encoder's ``dim`` attribute
            (what :class:`course_lib.vision.ViTEncoder` and
            :class:`course_lib.audio.AudioEncoder` have).
        init_temperature, max_scale: of the :class:`LogitScale` (CLIP: 0.07 and 100).

    Shape:
        images: (B, ...), what ``image_encoder`` reads; mels: (B, ...), what ``audio_encoder``
        reads (the same B: pair i is images[i] with mels[i]);
        :meth:`embed_images`, :meth:`embed_audio`: (B, E); :meth:`forward`: (B, B) logits,
        scale * cosine; :meth:`loss`: a scalar.
    """

    def __init__(self, image_encoder: nn.Module, audio_encoder: nn.Module, embed_dim: int,
                 image_dim: int | None = None, audio_dim: int | None = None,
                 init_temperature: float = 0.07, max_scale: float = 100.0) -> None:
        super().__init__()
        for name, encoder in (("image_encoder", image_encoder), ("audio_encoder", audio_encoder)):
            if not isinstance(encoder, nn.Module):
                raise ArgumentTypeError(f"{name} must be a torch.nn.Module, got "
                                        f"{describe(encoder)}")
        check_int("embed_dim", embed_dim, minimum=1)
        image_width = _encoder_width("image", image_encoder, image_dim)
        audio_width = _encoder_width("audio", audio_encoder, audio_dim)
        for name, width in (("image_dim", image_width), ("audio_dim", audio_width)):
            check_allocation(f"{name} * embed_dim", width * embed_dim, MAX_ELEMENTS, "weights")
        self.embed_dim = embed_dim
        self.image_encoder, self.audio_encoder = image_encoder, audio_encoder
        self.image_projection = Projection(image_width, embed_dim)
        self.audio_projection = Projection(audio_width, embed_dim)
        self.logit_scale = LogitScale(init_temperature, max_scale)

    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        """(B, ...) images -> (B, E) embeddings in the shared space (not normalised)."""
        batch = _batch_size("images", images)
        return self.image_projection(_pooled("image_encoder output", self.image_encoder(images),
                                             batch))

    def embed_audio(self, mels: torch.Tensor) -> torch.Tensor:
        """(B, ...) log-mel spectrograms -> (B, E) embeddings in the shared space."""
        batch = _batch_size("mels", mels)
        return self.audio_projection(_pooled("audio_encoder output", self.audio_encoder(mels),
                                             batch))

    def _pair(self, images: torch.Tensor, mels: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
        if _batch_size("images", images) != _batch_size("mels", mels):
            raise ValueError(f"images and mels must pair up row by row, got {len(images)} "
                             f"images and {len(mels)} mels")
        return self.embed_images(images), self.embed_audio(mels)

    def forward(self, images: torch.Tensor, mels: torch.Tensor) -> torch.Tensor:
        """Logits (B, B): logit scale times the cosine of image i with clip j."""
        image_embeddings, audio_embeddings = self._pair(images, mels)
        return self.logit_scale() * cosine_similarity_matrix(image_embeddings, audio_embeddings)

    def loss(self, images: torch.Tensor, mels: torch.Tensor, symmetric: bool = True
             ) -> torch.Tensor:
        """InfoNCE of the batch at temperature 1 / logit scale: CLIP's symmetric loss, or
        with ``symmetric=False`` the rows only (image -> clip). A scalar tensor."""
        check_flag("symmetric", symmetric)
        image_embeddings, audio_embeddings = self._pair(images, mels)
        similarity = cosine_similarity_matrix(image_embeddings, audio_embeddings)
        return contrastive_loss(similarity, 1 / self.logit_scale(), symmetric=symmetric)


def _batch_size(name: str, batch: Any) -> int:
    if not isinstance(batch, (torch.Tensor, np.ndarray)) or batch.ndim < 1:
        raise ArgumentTypeError(f"{name} must be a batch tensor (B, ...), got {describe(batch)}")
    if len(batch) == 0:
        raise ValueError(f"{name} must hold at least one item, got shape {tuple(batch.shape)}")
    return len(batch)


@dataclass(frozen=True)
class Recall:
    """Recall@k in both directions: A->B (rows of the similarity) and B->A (its columns)."""

    k: int
    a_to_b: float
    b_to_a: float


def _hits_at_k(similarity: torch.Tensor, k: int, same: torch.Tensor) -> torch.Tensor:
    """Per row: is an item marked in ``same`` among the row's k most similar columns?"""
    top = similarity.topk(k, dim=1).indices
    return same.gather(1, top).any(dim=1)


@torch.no_grad()
def recall_at_k(
    similarity: torch.Tensor,
    k: int,
    labels_a: torch.Tensor | None = None,
    labels_b: torch.Tensor | None = None,
) -> Recall:
    """Fraction of queries whose match is among their k most similar items, both directions.

    Without labels, the match of row i is column i (its own pair); ties are broken in
    ``torch.topk`` order. With labels, any item of
    the same label counts as a match (class-level retrieval: useful when many pairs share a
    class, such as ten spoken digits).

    Shape:
        similarity: (N, N); labels_a, labels_b: (N,) or both None.
    """
    similarity = _check_similarity(similarity)
    n = similarity.shape[0]
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
        raise ValueError(f"k must be an integer in [1, N={n}], got {describe(k)}")
    k = int(k)
    if (labels_a is None) != (labels_b is None):
        raise ValueError("labels_a and labels_b must be given together (or both left out)")
    if labels_a is None:
        same = torch.eye(n, dtype=torch.bool, device=similarity.device)
    else:
        labels_a = check_tensor("labels_a", labels_a, kind=None)
        labels_b = check_tensor("labels_b", labels_b, kind=None)
        for name, labels in (("labels_a", labels_a), ("labels_b", labels_b)):
            if labels.shape != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {tuple(labels.shape)}")
        labels_a, labels_b = labels_a.to(similarity.device), labels_b.to(similarity.device)
        same = labels_a[:, None] == labels_b[None, :]
    a_to_b = _hits_at_k(similarity, k, same).float().mean().item()
    b_to_a = _hits_at_k(similarity.T, k, same.T).float().mean().item()
    return Recall(k=k, a_to_b=a_to_b, b_to_a=b_to_a)


@torch.no_grad()
def zero_shot_classify(item_features: torch.Tensor, prompt_features: torch.Tensor) -> torch.Tensor:
    """Predict each item's class as the prompt it is most cosine-similar to.

    ``prompt_features`` holds one embedding per class (C, D), e.g. of "a handwritten seven"
    or of a spoken "seven", or several per class (C, P, D), which are normalised and averaged
    into one prototype per class (CLIP's prompt ensembling).

    Shape:
        item_features: (N, D); prompt_features: (C, D) or (C, P, D); returns (N,) int64.
    """
    item_features = _check_features(item_features, "item_features")
    if not isinstance(prompt_features, (torch.Tensor, np.ndarray)) or \
            prompt_features.ndim not in (2, 3):
        shape = getattr(prompt_features, "shape", None)
        raise ValueError(f"prompt_features must be (C, D) or (C, P, D), got "
                         f"{tuple(shape) if shape is not None else describe(prompt_features)}")
    prompt_features = check_tensor("prompt_features", prompt_features)
    if prompt_features.shape[0] == 0 or (prompt_features.ndim == 3 and
                                         prompt_features.shape[1] == 0):
        raise ValueError(f"prompt_features must hold at least one prompt per class, got shape "
                         f"{tuple(prompt_features.shape)}")
    _check_features(prompt_features.flatten(0, -2), "prompt_features")
    if item_features.dtype != prompt_features.dtype:
        common = torch.promote_types(item_features.dtype, prompt_features.dtype)
        item_features, prompt_features = item_features.to(common), prompt_features.to(common)
    if prompt_features.ndim == 3:
        prompt_features = F.normalize(prompt_features, dim=-1).mean(dim=1)
    if item_features.shape[1] != prompt_features.shape[1]:
        raise ValueError(
            f"item_features has width {item_features.shape[1]} but prompt_features has width "
            f"{prompt_features.shape[1]}: both must live in the same shared space"
        )
    return (F.normalize(item_features, dim=-1) @ F.normalize(prompt_features, dim=-1).T).argmax(1)


@dataclass(frozen=True)
class ContrastiveBreakdown:
    """Every number of the contrastive loss at one temperature (for the worked example/widget).

    Shape:
        row_probabilities: (N, N), softmax of each row (A->B); column_probabilities: (N, N),
        softmax of each column (B->A), stored so that [:, j] is column j's distribution;
        row_losses, column_losses: (N,).
    """

    row_probabilities: torch.Tensor
    column_probabilities: torch.Tensor
    row_losses: torch.Tensor
    column_losses: torch.Tensor
    row_loss: float
    column_loss: float
    symmetric_loss: float


@torch.no_grad()
def contrastive_breakdown(
    similarity: torch.Tensor, temperature: float | torch.Tensor
) -> ContrastiveBreakdown:
    """Softmax probabilities and per-pair losses in both directions at temperature tau.

    Shape:
        similarity: (N, N); see :class:`ContrastiveBreakdown` for the outputs.
    """
    similarity = _check_similarity(similarity)
    _check_temperature(temperature)
    logits = similarity.double() / float(temperature)
    row_log_p = logits.log_softmax(dim=1)
    column_log_p = logits.log_softmax(dim=0)
    row_losses = -row_log_p.diagonal()
    column_losses = -column_log_p.diagonal()
    return ContrastiveBreakdown(
        row_probabilities=row_log_p.exp(),
        column_probabilities=column_log_p.exp(),
        row_losses=row_losses,
        column_losses=column_losses,
        row_loss=row_losses.mean().item(),
        column_loss=column_losses.mean().item(),
        symmetric_loss=((row_losses.mean() + column_losses.mean()) / 2).item(),
    )


@dataclass(frozen=True)
class TemperatureCurve:
    """Mean contrastive loss at each of several temperatures (row, column, symmetric)."""

    temperatures: torch.Tensor
    row_loss: torch.Tensor
    column_loss: torch.Tensor
    symmetric_loss: torch.Tensor


@torch.no_grad()
def temperature_curve(similarity: torch.Tensor, temperatures: torch.Tensor) -> TemperatureCurve:
    """The loss of one similarity matrix as the temperature varies.

    Shape:
        similarity: (N, N); temperatures: (T,), all > 0; each loss: (T,).
    """
    similarity = _check_similarity(similarity)
    if isinstance(temperatures, (list, tuple)) and all(
            isinstance(t, (int, float, np.number)) and not isinstance(t, (bool, np.bool_))
            for t in temperatures):
        temperatures = torch.tensor([float(t) for t in temperatures], dtype=torch.float64)
    temperatures = check_tensor("temperatures", temperatures, ndim=1).to(torch.float64)
    if temperatures.numel() == 0 or not bool(torch.isfinite(temperatures).all()) \
            or (temperatures <= 0).any():
        raise ValueError(f"temperatures must be a non-empty 1-D tensor of finite values > 0, "
                         f"got {describe(temperatures)}")
    check_allocation("len(temperatures) * N * N",
                     len(temperatures) * similarity.shape[0] ** 2, MAX_ELEMENTS, "values")
    logits = similarity.double()[None] / temperatures.to(similarity.device)[:, None, None]
    diagonal = torch.arange(similarity.shape[0], device=similarity.device)
    row_loss = -logits.log_softmax(dim=2)[:, diagonal, diagonal].mean(dim=1)
    column_loss = -logits.log_softmax(dim=1)[:, diagonal, diagonal].mean(dim=1)
    return TemperatureCurve(temperatures, row_loss, column_loss, (row_loss + column_loss) / 2)
