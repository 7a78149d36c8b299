"""Fusion strategies: early (feature-level), late (decision-level) and hybrid (attention).

Every model here is built from ``input_dims`` (modality name -> feature width) and
``num_classes``, and is called with a dict of tensors, one per modality, each a vector per
example ``(B, D_m)`` or a token sequence ``(B, T_m, D_m)``:

- :class:`EarlyFusion` concatenates the features and runs one shared network. It needs every
  modality (:func:`zero_fill` makes an explicit zero stand-in for a missing one).
- :class:`LateFusion` trains one complete classifier per modality and combines their
  *predictions* (mean, weighted mean, or a learned linear combiner). Any subset works.
- :class:`EmbeddingConcatFusion` is what some libraries also call "late fusion": separate
  encoders whose *embeddings* are concatenated, then one head. It is feature-level fusion of
  encoded features, so it can learn interactions that decision-level fusion cannot.
- :class:`HybridFusion` projects each modality to tokens, adds modality embeddings, and fuses
  them with real transformer blocks (self-attention over the joint sequence), then a head.
- :class:`DualEncoderMatcher` is a dual encoder (CLIP-style "late interaction"): separate
  encoders whose unit embeddings meet in one cosine similarity, for matching pairs.

Token sequences: early fusion and the per-modality models of late fusion mean-pool them over
T (flatten them first, :func:`flatten_tokens`, to keep every token at the cost of width);
hybrid fusion keeps every token. :class:`HybridFusion` and :class:`DualEncoderMatcher` are
defined in :mod:`course_lib.fusion_hybrid` and importable from here.

What chapter 05 measures these models with (the digits' tokenizer, evaluation, compression,
:func:`train_fusion`, the playground's logic) lives in :mod:`course_lib.fusion_tools`; every
one of those names can also be imported from here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from course_lib._validation import (
    ArgumentTypeError,
    check_number,
    check_sequence,
    check_tensor,
    describe,
    to_weights_dtype,
)

Features = Mapping[str, torch.Tensor]
COMBINE_RULES = ("mean", "weighted", "learned")


def concatenate_features(features: Sequence[torch.Tensor]) -> torch.Tensor:
    """Early fusion's first step: join feature vectors end to end.

    Args:
        features: tensors ``(D_1,), (D_2,), ...`` or ``(B, D_1), (B, D_2), ...``.

    Shape:
        output: ``(sum D_m,)`` or ``(B, sum D_m)``.
    """
    features = check_sequence("features", features, of="feature tensors")
    if len(features) == 0:
        raise ValueError("features is empty: give at least one tensor to concatenate")
    features = [check_tensor(f"features[{i}]", f) for i, f in enumerate(features)]
    leading = {tuple(f.shape[:-1]) for f in features}
    if any(f.ndim not in (1, 2) for f in features) or len(leading) != 1:
        shapes = [tuple(f.shape) for f in features]
        raise ValueError(f"features must all be (D_m,) or all (B, D_m) with one B, got {shapes}")
    return torch.cat(list(features), dim=-1)


def linear_combiner(
    predictions: Sequence[torch.Tensor], weights: torch.Tensor, bias: float | torch.Tensor
) -> torch.Tensor:
    """A learned late-fusion head in its simplest form: ``z = w . [p_1 ; p_2 ; ...] + b``.

    Args:
        predictions: each modality's prediction vector, ``(K_m,)`` or ``(B, K_m)``.
        weights: one weight per concatenated prediction entry, ``(sum K_m,)``.
        bias: a scalar.

    Shape:
        output: ``()`` for unbatched predictions, else ``(B,)``.
    """
    stacked = concatenate_features(check_sequence("predictions", predictions,
                                                  of="prediction tensors"))
    weights = check_tensor("weights", weights)
    if not isinstance(bias, torch.Tensor):
        bias = check_number("bias", bias)
    if weights.ndim != 1 or weights.shape[0] != stacked.shape[-1]:
        raise ValueError(
            f"weights must be a vector of {stacked.shape[-1]} entries (one per prediction "
            f"entry), got shape {tuple(weights.shape)}"
        )
    return stacked @ weights.to(stacked.dtype) + bias


def check_features(features: Features, input_dims: Mapping[str, int]) -> list[str]:
    """Validate a feature dict against ``input_dims``; returns the modalities present, in order.

    Raises:
        ValueError: naming the modality when a key is unknown, a tensor is not ``(B, D)`` or
            ``(B, T, D)``, its width differs from ``input_dims``, or batch sizes disagree.
    """
    if not isinstance(features, Mapping) or len(features) == 0:
        raise ValueError(
            f"features must be a non-empty dict of modality -> tensor (expected some of "
            f"{list(input_dims)}), got {features!r:.80}"
        )
    for name, tensor in features.items():
        if name not in input_dims:
            raise ValueError(
                f"features has modality {name!r}, but the model was built for {list(input_dims)}"
            )
        tensor = check_tensor(f"features[{name!r}]", tensor)  # a float tensor (or array)
        if tensor.ndim not in (2, 3):
            raise ValueError(
                f"features[{name!r}] must be (B, D) or (B, T, D), got shape {tuple(tensor.shape)}"
            )
        if tensor.shape[-1] != input_dims[name]:
            raise ValueError(
                f"features[{name!r}] has width {tensor.shape[-1]}, but the model was built for "
                f"{input_dims[name]} (argument input_dims[{name!r}])"
            )
    batch_sizes = {name: tensor.shape[0] for name, tensor in features.items()}
    if len(set(batch_sizes.values())) != 1:
        raise ValueError(f"features disagree on the batch size B: {batch_sizes}")
    return [name for name in input_dims if name in features]


def _model_features(model: nn.Module, features: Features, input_dims: Mapping[str, int]
                    ) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Checked features as tensors in ``model``'s weights dtype (the course's dtype policy:
    float64 or numpy features work), and the modalities present, in order."""
    present = check_features(features, input_dims)
    converted = {name: to_weights_dtype(f"features[{name!r}]", tensor, model)
                 for name, tensor in features.items()}
    return converted, present


def check_input_dims(input_dims: Mapping[str, int], num_classes: int) -> None:
    """Raise ``ValueError`` unless ``input_dims`` maps names to positive widths and C >= 2."""
    if not isinstance(input_dims, Mapping) or len(input_dims) == 0:
        raise ValueError(f"input_dims must be a non-empty dict name -> width, got "
                         f"{describe(input_dims)}")
    for name, width in input_dims.items():
        if not isinstance(name, str):
            raise ArgumentTypeError(f"input_dims keys must be modality names (str), got "
                                    f"{describe(name)}")
        if isinstance(width, bool) or not isinstance(width, int) or width <= 0:
            raise ValueError(f"input_dims[{name!r}] must be a positive int, got {width!r}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")


def pool_tokens(tensor: torch.Tensor) -> torch.Tensor:
    """Mean over the token axis: ``(B, T, D) -> (B, D)``; vectors ``(B, D)`` pass through."""
    tensor = check_tensor("tensor", tensor)
    if tensor.ndim not in (2, 3):
        raise ValueError(f"tensor must be (B, D) or (B, T, D), got shape {tuple(tensor.shape)}")
    return tensor.mean(dim=1) if tensor.ndim == 3 else tensor


def modality_dropout(
    features: Features, p: float, generator: torch.Generator | None = None
) -> list[tuple[torch.Tensor, dict[str, torch.Tensor]]]:
    """Drop each modality of each training example with probability ``p`` (keeping one).

    Training on examples with modalities missing teaches a model not to lean on one of them
    and to cope when one is absent at test time. Examples that kept the same modalities are
    grouped, so that each group is an ordinary batch with fewer modalities (for a model that
    needs every input, follow with :func:`zero_fill`).

    Args:
        features: the batch, modality -> ``(B, ...)``.
        p: drop probability per modality and example, in [0, 1).
        generator: optional random generator, for reproducible training.

    Returns:
        A list of ``(rows, kept_features)``: ``rows`` indexes the batch ``(B_g,)``;
        ``kept_features`` maps each kept modality to its rows ``(B_g, ...)``. The groups'
        rows partition ``range(B)``.
    """
    p = check_number("p", p)
    if not 0.0 <= p < 1.0:
        raise ValueError(f"p must be in [0, 1), got {p}")
    if not isinstance(features, Mapping):
        raise ArgumentTypeError(f"features must be a dict modality -> (B, ...) tensor, got "
                                f"{describe(features)}")
    if len(features) == 0:
        raise ValueError("features is empty: nothing to drop")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ArgumentTypeError(f"generator must be a torch.Generator or None, got "
                                f"{describe(generator)}")
    features = {name: check_tensor(f"features[{name!r}]", value, kind=None, min_ndim=1)
                for name, value in features.items()}
    names = list(features)
    sizes = {len(value) for value in features.values()}
    if len(sizes) != 1:
        raise ValueError(f"features disagree on the batch size B: "
                         f"{ {name: len(value) for name, value in features.items()} }")
    batch = sizes.pop()
    keep = torch.rand(batch, len(names), generator=generator) >= p
    lost_all = ~keep.any(dim=1)  # give those examples back one modality, chosen at random
    rescued = torch.randint(len(names), (int(lost_all.sum()),), generator=generator)
    keep[lost_all.nonzero()[:, 0], rescued] = True
    groups = []
    for pattern in keep.unique(dim=0):
        rows = (keep == pattern).all(dim=1).nonzero()[:, 0]
        kept = {name: features[name][rows] for name, on in zip(names, pattern.tolist(),
                                                                strict=True) if on}
        groups.append((rows, kept))
    return groups


def zero_fill(features: Features, input_dims: Mapping[str, int]) -> dict[str, torch.Tensor]:
    """Give every modality of ``input_dims`` missing from ``features`` a zero vector ``(B, D_m)``.

    The usual stand-in that lets a model which needs every input (early fusion) run with a
    modality absent. Zeros are not "unknown": the model reads them as a (strange) input.
    """
    present = check_features(features, input_dims)
    filled = {name: check_tensor(f"features[{name!r}]", value) for name, value in features.items()}
    reference = filled[present[0]]
    for name, width in input_dims.items():
        if name not in filled:
            filled[name] = reference.new_zeros(len(reference), width)
    return filled


def _mlp(in_dim: int, hidden_dim: int, out_dim: int, dropout: float = 0.0) -> nn.Sequential:
    """Two hidden layers with GELU: ``in_dim -> hidden_dim -> hidden_dim -> out_dim``."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Dropout(dropout),
        nn.Linear(hidden_dim, hidden_dim), nn.GELU(), nn.Dropout(dropout),
        nn.Linear(hidden_dim, out_dim),
    )


class EarlyFusion(nn.Module):
    """Feature-level fusion: concatenate every modality's features, one shared network.

    It needs every modality: a missing one raises ``ValueError``. (To run it anyway, fill the
    gap explicitly with :func:`zero_fill`, the usual stand-in, and measure what it costs.)

    Args:
        input_dims: modality name -> feature width D_m (also the concatenation order).
        num_classes: C.
        hidden_dim: width of the shared network's two hidden layers.
        dropout: dropout after each hidden layer (0 = off).

    Shape:
        features[m]: ``(B, D_m)`` or ``(B, T_m, D_m)`` (mean-pooled over T_m); output ``(B, C)``.
    """

    requires_all_modalities = True

    def __init__(self, input_dims: Mapping[str, int], num_classes: int, hidden_dim: int = 128,
                 dropout: float = 0.0) -> None:
        super().__init__()
        check_input_dims(input_dims, num_classes)
        self.input_dims = dict(input_dims)
        self.net = _mlp(sum(self.input_dims.values()), hidden_dim, num_classes, dropout)

    def forward(self, features: Features) -> torch.Tensor:
        features, present = _model_features(self, features, self.input_dims)
        if len(present) != len(self.input_dims):
            absent = [name for name in self.input_dims if name not in present]
            raise ValueError(
                f"early fusion needs all of its modalities {list(self.input_dims)}, but "
                f"{absent} is missing (zero_fill(features, input_dims) fills in zeros)"
            )
        parts = [pool_tokens(features[name]) for name in self.input_dims]
        return self.net(concatenate_features(parts))


class LateFusion(nn.Module):
    """Decision-level fusion: one complete classifier per modality, predictions combined.

    Each modality's model predicts class probabilities on its own; ``combine`` joins the
    predictions of the modalities present: ``"mean"`` (average), ``"weighted"`` (learned
    non-negative weights, renormalised over the modalities present) or ``"learned"`` (a
    linear layer over the concatenated probabilities; a missing modality counts as the
    uninformative uniform prediction 1/C).

    Train it with :meth:`loss`: each modality's model learns the task from its modality
    alone, and the combiner learns from the (detached) predictions, so it stays decision-level.

    Shape:
        features[m]: ``(B, D_m)`` or ``(B, T_m, D_m)`` (mean-pooled over T_m);
        output ``(B, C)``: log-probabilities for mean/weighted, logits for learned.
    """

    def __init__(self, input_dims: Mapping[str, int], num_classes: int, combine: str = "mean",
                 hidden_dim: int = 64, dropout: float = 0.0) -> None:
        super().__init__()
        check_input_dims(input_dims, num_classes)
        if combine not in COMBINE_RULES:
            raise ValueError(f"combine must be one of {COMBINE_RULES}, got {combine!r}")
        self.input_dims, self.combine, self.num_classes = dict(input_dims), combine, num_classes
        self.models = nn.ModuleDict(
            {name: _mlp(width, hidden_dim, num_classes, dropout)
             for name, width in input_dims.items()}
        )
        self.modality_weight_logits = nn.Parameter(torch.zeros(len(input_dims)))
        self.combiner = nn.Linear(len(input_dims) * num_classes, num_classes)

    def per_modality_logits(self, features: Features) -> dict[str, torch.Tensor]:
        """Each present modality's own prediction (logits ``(B, C)``), keyed by modality."""
        features, present = _model_features(self, features, self.input_dims)
        return {name: self.models[name](pool_tokens(features[name])) for name in present}

    def combine_predictions(self, logits: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Join per-modality logits ``(B, C)`` into one ``(B, C)`` output with ``combine``."""
        if not isinstance(logits, Mapping) or not logits:
            raise ArgumentTypeError(f"logits must be a non-empty dict modality -> (B, C) "
                                    f"tensor, got {describe(logits)}")
        dims: dict = {}
        for name, value in logits.items():
            if name not in self.input_dims:
                raise ValueError(f"logits has modality {name!r}, but the model was built for "
                                 f"{list(self.input_dims)}")
            check_tensor(f"logits[{name!r}]", value, shape=("B", self.num_classes), dims=dims)
        probabilities = {name: value.softmax(dim=-1) for name, value in logits.items()}
        if self.combine == "learned":
            reference = next(iter(probabilities.values()))
            uniform = torch.full_like(reference, 1.0 / self.num_classes)
            parts = [probabilities.get(name, uniform) for name in self.input_dims]
            return self.combiner(torch.cat(parts, dim=-1))
        names = list(probabilities)
        if self.combine == "mean":
            weights = [1.0 / len(names)] * len(names)
        else:
            index = torch.tensor([list(self.input_dims).index(name) for name in names])
            weights = self.modality_weight_logits[index].softmax(dim=0)
        mixed = sum(w * probabilities[name] for w, name in zip(weights, names, strict=True))
        return mixed.clamp_min(1e-12).log()

    def forward(self, features: Features) -> torch.Tensor:
        return self.combine_predictions(self.per_modality_logits(features))

    def loss(self, features: Features, labels: torch.Tensor) -> torch.Tensor:
        """Per-modality cross-entropies (mean) plus the combiner's loss on detached predictions."""
        logits = self.per_modality_logits(features)
        labels = check_tensor("labels", labels, kind="int",
                              shape=(len(next(iter(logits.values()))),))
        own = torch.stack([F.cross_entropy(value, labels) for value in logits.values()]).mean()
        if self.combine == "mean":
            return own
        detached = {name: value.detach() for name, value in logits.items()}
        return own + F.cross_entropy(self.combine_predictions(detached), labels)


class EmbeddingConcatFusion(nn.Module):
    """Encoders per modality, embeddings concatenated, one head (also called "late fusion").

    Several libraries and papers use "late fusion" for this: each modality is encoded
    separately and the *embeddings* are concatenated before a classifier. The head sees both
    embeddings at once, so (unlike :class:`LateFusion`) it can learn how modalities interact.

    Shape:
        features[m]: ``(B, D_m)`` or ``(B, T_m, D_m)`` (mean-pooled); output ``(B, C)``.
    """

    requires_all_modalities = True

    def __init__(self, input_dims: Mapping[str, int], num_classes: int, embed_dim: int = 32,
                 hidden_dim: int = 64) -> None:
        super().__init__()
        check_input_dims(input_dims, num_classes)
        self.input_dims = dict(input_dims)
        self.encoders = nn.ModuleDict(
            {name: _mlp(width, hidden_dim, embed_dim) for name, width in input_dims.items()}
        )
        self.head = nn.Sequential(
            nn.GELU(), nn.Linear(embed_dim * len(input_dims), hidden_dim), nn.GELU(),
            nn.Linear(hidden_dim, num_classes),
        )

    def forward(self, features: Features) -> torch.Tensor:
        features, present = _model_features(self, features, self.input_dims)
        if len(present) != len(self.input_dims):
            absent = [name for name in self.input_dims if name not in present]
            raise ValueError(f"embedding concatenation needs every modality; {absent} is missing")
        embeddings = [self.encoders[name](pool_tokens(features[name])) for name in self.input_dims]
        return self.head(torch.cat(embeddings, dim=-1))


# ----------------------------------------------------------------------------- measuring tools
_TOOLS = (
    "DigitTokenizer", "PlaygroundData", "Standardizer", "align_by_timestamps",
    "audio_frame_tokens", "build_playground_data", "count_parameters", "flatten_tokens",
    "fusion_accuracy", "fusion_correct", "fusion_loss", "linear_weight_count", "model_inputs",
    "modality_removal", "modality_shuffle", "playground_accuracies", "playground_table",
    "quantize_linear_weights", "train_fusion",
)


_MODELS = ("DualEncoderMatcher", "HybridFusion")


def __getattr__(name: str):
    """The models of :mod:`course_lib.fusion_hybrid` and the measuring tools of
    :mod:`course_lib.fusion_tools`, importable from here too (loaded on first use: both
    modules import this one)."""
    if name in _MODELS:
        from course_lib import fusion_hybrid

        return getattr(fusion_hybrid, name)
    if name in _TOOLS:
        from course_lib import fusion_tools

        return getattr(fusion_tools, name)
    raise AttributeError(f"module 'course_lib.fusion' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_MODELS) + list(_TOOLS))
