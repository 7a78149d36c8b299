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

Token sequences: early fusion and the per-modality models of late fusion mean-pool them over
T (flatten them first, :func:`flatten_tokens`, to keep every token at the cost of width);
hybrid fusion keeps every token.

The second half of the module holds what chapter 05 measures with: the worked-example
functions, :func:`modality_dropout`, the digits' tokenizer, alignment by timestamps,
evaluation (accuracy with modalities removed), int8 weight quantisation, training
(:func:`train_fusion`) and the fusion playground's logic.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from course_lib.attention import TransformerBlock
from course_lib.audio import log_mel_spectrogram, sinusoidal_positions
from course_lib.train import History, accuracy, train

Features = Mapping[str, torch.Tensor]
COMBINE_RULES = ("mean", "weighted", "learned")


def concatenate_features(features: Sequence[torch.Tensor]) -> torch.Tensor:
    """Early fusion's first step: join feature vectors end to end.

    Args:
        features: tensors ``(D_1,), (D_2,), ...`` or ``(B, D_1), (B, D_2), ...``.

    Shape:
        output: ``(sum D_m,)`` or ``(B, sum D_m)``.
    """
    if len(features) == 0:
        raise ValueError("features is empty: give at least one tensor to concatenate")
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
    stacked = concatenate_features(predictions)
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


def check_input_dims(input_dims: Mapping[str, int], num_classes: int) -> None:
    """Raise ``ValueError`` unless ``input_dims`` maps names to positive widths and C >= 2."""
    if not isinstance(input_dims, Mapping) or len(input_dims) == 0:
        raise ValueError(f"input_dims must be a non-empty dict name -> width, got {input_dims!r}")
    for name, width in input_dims.items():
        if not isinstance(width, int) or width <= 0:
            raise ValueError(f"input_dims[{name!r}] must be a positive int, got {width!r}")
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")


def pool_tokens(tensor: torch.Tensor) -> torch.Tensor:
    """Mean over the token axis: ``(B, T, D) -> (B, D)``; vectors ``(B, D)`` pass through."""
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
    if not 0.0 <= p < 1.0:
        raise ValueError(f"p must be in [0, 1), got {p}")
    if len(features) == 0:
        raise ValueError("features is empty: nothing to drop")
    names = list(features)
    batch = len(next(iter(features.values())))
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
    reference = features[present[0]]
    filled = dict(features)
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
        present = check_features(features, self.input_dims)
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
        present = check_features(features, self.input_dims)
        return {name: self.models[name](pool_tokens(features[name])) for name in present}

    def combine_predictions(self, logits: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Join per-modality logits ``(B, C)`` into one ``(B, C)`` output with ``combine``."""
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
        present = check_features(features, self.input_dims)
        if len(present) != len(self.input_dims):
            absent = [name for name in self.input_dims if name not in present]
            raise ValueError(f"embedding concatenation needs every modality; {absent} is missing")
        embeddings = [self.encoders[name](pool_tokens(features[name])) for name in self.input_dims]
        return self.head(torch.cat(embeddings, dim=-1))


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
        present = check_features(features, self.input_dims)
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


# ----------------------------------------------------------------------------- the chapter's data
def audio_frame_tokens(waveforms: torch.Tensor, sample_rate: int = 16000, n_mels: int = 32,
                       num_tokens: int = 5) -> torch.Tensor:
    """Waveforms as a short token sequence: log-mel frames averaged into ``num_tokens`` chunks.

    One second at 100 frames/s becomes 5 tokens of 0.2 s each (with the defaults).

    Shape:
        waveforms: ``(N, L)``; output ``(N, num_tokens, n_mels)``.
    """
    if waveforms.ndim != 2:
        raise ValueError(f"waveforms must be (N, L), got shape {tuple(waveforms.shape)}")
    if num_tokens < 1:
        raise ValueError(f"num_tokens must be positive, got {num_tokens}")
    log_mel = log_mel_spectrogram(waveforms, sample_rate, n_mels=n_mels)  # (N, n_mels, frames)
    if log_mel.shape[-1] < num_tokens:
        raise ValueError(f"num_tokens {num_tokens} exceeds the {log_mel.shape[-1]} frames")
    return F.adaptive_avg_pool1d(log_mel, num_tokens).transpose(1, 2)


class Standardizer:
    """Per-feature standardisation ``(x - mean) / std`` with statistics from training tokens.

    Shape:
        tokens: ``(N, T, D)`` or ``(N, D)``; statistics ``(D,)``.
    """

    def __init__(self, training_tokens: torch.Tensor) -> None:
        if training_tokens.ndim < 2 or training_tokens[..., 0].numel() < 2:
            raise ValueError(f"training_tokens must be (N, D) or (N, T, D) with at least two rows, "
                             f"got shape {tuple(training_tokens.shape)}")
        flat = training_tokens.reshape(-1, training_tokens.shape[-1])
        self.mean, self.std = flat.mean(dim=0), flat.std(dim=0).clamp_min(1e-6)

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.shape[-1] != len(self.mean):
            raise ValueError(f"tokens have width {tokens.shape[-1]}, but the statistics were "
                             f"fitted on width {len(self.mean)}")
        return (tokens - self.mean) / self.std


class DigitTokenizer:
    """The chapter's inputs: each image as one token of its 64 pixels, each clip as 5 tokens.

    Each audio token averages 0.2 s of log-mel frames (32 mel bands). Pixels and mel bands
    are standardised with statistics of the training data given to the constructor.

    Shape:
        images: ``(N, 1, 8, 8)``; waveforms: ``(N, 16000)``;
        output: ``{"image": (N, 1, 64), "audio": (N, num_audio_tokens, 32)}``.
    """

    def __init__(self, train_images: torch.Tensor, train_waveforms: torch.Tensor,
                 num_audio_tokens: int = 5, n_mels: int = 32) -> None:
        self.num_audio_tokens, self.n_mels = num_audio_tokens, n_mels
        self.image_standardizer = Standardizer(train_images.flatten(1))
        raw_audio = self.audio_tokens(train_waveforms, standardize=False)
        self.audio_standardizer = Standardizer(raw_audio)

    def image_tokens(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4:
            raise ValueError(f"images must be (N, 1, H, W), got shape {tuple(images.shape)}")
        return self.image_standardizer(images.flatten(1))[:, None]

    def audio_tokens(self, waveforms: torch.Tensor, standardize: bool = True) -> torch.Tensor:
        tokens = audio_frame_tokens(waveforms, n_mels=self.n_mels,
                                    num_tokens=self.num_audio_tokens)
        return self.audio_standardizer(tokens) if standardize else tokens

    def __call__(self, images: torch.Tensor, waveforms: torch.Tensor) -> dict[str, torch.Tensor]:
        if len(images) != len(waveforms):
            raise ValueError(f"images and waveforms must pair up, got {len(images)} images and "
                             f"{len(waveforms)} waveforms")
        return {"image": self.image_tokens(images), "audio": self.audio_tokens(waveforms)}


def flatten_tokens(features: Features) -> dict[str, torch.Tensor]:
    """Each modality's tokens ``(B, T, D)`` joined into one vector ``(B, T*D)`` (keeps order).

    Vectors ``(B, D)`` pass through unchanged.
    """
    for name, value in features.items():
        if value.ndim not in (2, 3):
            raise ValueError(f"features[{name!r}] must be (B, D) or (B, T, D), got shape "
                             f"{tuple(value.shape)}")
    return {name: value.flatten(1) for name, value in features.items()}


def align_by_timestamps(waveforms: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Undo known delays: rotate clip i left by ``shifts[i]`` samples.

    The fix for misalignment when each recording carries a timestamp of its start. The
    ``shift`` samples before the start (silence or background noise) move to the end, so the
    clip keeps its length and its background is the same everywhere (zeros there instead
    would look like nothing the model has ever heard).

    Shape:
        waveforms: ``(N, L)``; shifts: ``(N,)`` integer samples in [0, L); output ``(N, L)``.
    """
    if waveforms.ndim != 2 or shifts.shape != waveforms.shape[:1]:
        raise ValueError(f"waveforms must be (N, L) and shifts (N,), got "
                         f"{tuple(waveforms.shape)} and {tuple(shifts.shape)}")
    if (shifts < 0).any() or (shifts >= waveforms.shape[1]).any():
        raise ValueError(f"shifts must be in [0, {waveforms.shape[1]}), got {shifts.tolist()}")
    return torch.stack([row.roll(-shift) for row, shift in zip(waveforms, shifts.tolist(),
                                                               strict=True)])


# ----------------------------------------------------------------------------- evaluation
def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@torch.no_grad()
def fusion_accuracy(model: nn.Module, features: Features, labels: torch.Tensor) -> float:
    """Accuracy of ``model`` on ``features`` (a subset of its modalities is allowed).

    Models that need every modality (``requires_all_modalities``) get :func:`zero_fill`
    stand-ins for the missing ones; the others simply see fewer modalities.
    """
    model.eval()
    if getattr(model, "requires_all_modalities", False):
        features = zero_fill(features, model.input_dims)
    return accuracy(model(features), labels)


def modality_removal(model: nn.Module, features: Features, labels: torch.Tensor
                     ) -> dict[str, float]:
    """Accuracy with every modality, then with each one removed: ``{"all": .., "no image": ..}``.

    The drop when a modality is removed measures how much the model relies on it.
    """
    result = {"all": fusion_accuracy(model, features, labels)}
    for name in features:
        rest = {other: value for other, value in features.items() if other != name}
        if rest:
            result[f"no {name}"] = fusion_accuracy(model, rest, labels)
    return result


@torch.no_grad()
def quantize_linear_weights(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose Linear weights are stored as 8-bit integers (simulated).

    Symmetric per-row quantisation: each output row gets one float scale ``max|w| / 127`` and
    its weights become integers in [-127, 127] times that scale, so they would take 1 byte
    each instead of 4. The copy computes with the rounded weights, so its accuracy shows
    what the rounding costs.
    """
    quantized = copy.deepcopy(model)
    for module in quantized.modules():
        if isinstance(module, nn.Linear):
            scale = module.weight.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 127
            module.weight.copy_((module.weight / scale).round().clamp(-127, 127) * scale)
    return quantized


def linear_weight_count(model: nn.Module) -> tuple[int, int]:
    """(number of Linear weights, number of Linear output rows) in ``model``."""
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    return (sum(layer.weight.numel() for layer in linears),
            sum(layer.weight.shape[0] for layer in linears))


# ----------------------------------------------------------------------------- training
def fusion_loss(model: nn.Module, features: Features, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the model's output, or :meth:`LateFusion.loss` for late fusion."""
    if isinstance(model, LateFusion):
        return model.loss(features, labels)
    return F.cross_entropy(model(features), labels)


def train_fusion(model: nn.Module, tokens: Features, labels: torch.Tensor, *, epochs: int,
                 lr: float = 3e-3, batch_size: int = 64, modality_dropout_p: float = 0.0,
                 seed: int = 0, progress: bool = True) -> History:
    """Train a fusion model with :func:`course_lib.train.train` on the modalities it was built for.

    Args:
        tokens: modality -> ``(N, T_m, D_m)``; each model reads them via :func:`model_inputs`
            (hybrid fusion the tokens, the others the flattened vectors).
        labels: ``(N,)`` class indices.
        modality_dropout_p: if > 0, each example of each training batch loses each modality
            with this probability (:func:`modality_dropout`; models that need every modality
            get :func:`zero_fill` stand-ins); the loss is the mean over all examples.
    """
    names = list(model.input_dims)
    missing = [name for name in names if name not in tokens]
    if missing:
        raise ValueError(f"tokens lacks {missing}, which the model was built for")
    inputs = model_inputs(model, {name: tokens[name] for name in names})
    generator = torch.Generator().manual_seed(seed)

    def loss_of_batch(batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        features, labels = dict(zip(names, batch[:-1], strict=True)), batch[-1]
        if modality_dropout_p == 0:
            return fusion_loss(model, features, labels)
        total = torch.zeros((), device=labels.device)
        for rows, kept in modality_dropout(features, modality_dropout_p, generator):
            if getattr(model, "requires_all_modalities", False):
                kept = zero_fill(kept, model.input_dims)
            total = total + fusion_loss(model, kept, labels[rows]) * len(rows) / len(labels)
        return total

    return train(model, loss_of_batch, [inputs[name] for name in names] + [labels],
                 epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, progress=progress)


# ----------------------------------------------------------------------------- the playground
def model_inputs(model: nn.Module, tokens: Features) -> Features:
    """What each model reads: hybrid fusion the tokens, the others each modality flattened."""
    return tokens if isinstance(model, HybridFusion) else flatten_tokens(tokens)


@dataclass
class PlaygroundData:
    """Test tokens precomputed at each degradation level, so a slider move only evaluates.

    Attributes:
        image_tokens: image noise level -> image tokens ``(N, T_image, D_image)``.
        audio_tokens: SNR in dB -> audio tokens ``(N, T_audio, D_audio)`` (same N examples).
        labels: ``(N,)``.
    """

    image_tokens: dict[float, torch.Tensor]
    audio_tokens: dict[float, torch.Tensor]
    labels: torch.Tensor

    def tokens(self, image_noise: float, snr_db: float) -> dict[str, torch.Tensor]:
        """The test tokens at one setting (both levels must be among the precomputed ones)."""
        for name, value, table in (("image_noise", image_noise, self.image_tokens),
                                   ("snr_db", snr_db, self.audio_tokens)):
            if value not in table:
                raise ValueError(f"{name} {value} was not precomputed; choose one of "
                                 f"{sorted(table)}")
        return {"image": self.image_tokens[image_noise], "audio": self.audio_tokens[snr_db]}


def playground_accuracies(models: Mapping[str, nn.Module], data: PlaygroundData,
                          image_noise: float, snr_db: float,
                          dropped: Sequence[str] = ()) -> dict[str, float]:
    """Each model's test accuracy at one degradation setting with some modalities dropped.

    Models that need every modality get zeros for a dropped one (see :func:`fusion_accuracy`).
    """
    tokens = data.tokens(image_noise, snr_db)
    unknown = [name for name in dropped if name not in tokens]
    if unknown or len(set(dropped)) >= len(tokens):
        raise ValueError(f"dropped must name some (not all) of {list(tokens)}, got {list(dropped)}")
    kept = {name: value for name, value in tokens.items() if name not in dropped}
    return {name: fusion_accuracy(model, model_inputs(model, kept), data.labels)
            for name, model in models.items()}


def playground_table(models: Mapping[str, nn.Module], data: PlaygroundData
                     ) -> dict[tuple[float, float, tuple[str, ...]], dict[str, float]]:
    """:func:`playground_accuracies` at every setting: (image noise, SNR, dropped) -> accuracies.

    Computed once, so that moving a slider is a look-up. With the image dropped the image
    noise does not matter (and likewise for the audio), so those settings share one entry.
    """
    table, computed = {}, {}
    for noise in data.image_tokens:
        for snr in data.audio_tokens:
            for dropped in ((), ("image",), ("audio",)):
                setting = (None if "image" in dropped else noise,
                           None if "audio" in dropped else snr, dropped)
                if setting not in computed:
                    computed[setting] = playground_accuracies(models, data, noise, snr, dropped)
                table[noise, snr, dropped] = computed[setting]
    return table


def build_playground_data(image_noise_levels: Sequence[float], snr_levels: Sequence[float],
                          tokenizer: DigitTokenizer, split: str = "test", seed: int = 1,
                          num_examples: int | None = None) -> PlaygroundData:
    """Precompute the tokens of ``load_digits_av(split, seed)`` at every degradation level.

    The pairing of images and clips does not depend on the degradation, so the image tokens of
    one level and the audio tokens of another describe the same N examples.
    """
    from course_lib.data.digits_av import load_digits_av

    if not image_noise_levels or not snr_levels:
        raise ValueError("image_noise_levels and snr_levels must each hold at least one level")
    clean = load_digits_av(split, seed=seed)
    count = len(clean) if num_examples is None else num_examples
    if not 0 < count <= len(clean):
        raise ValueError(f"num_examples must be in 1..{len(clean)}, got {num_examples}")
    image_tokens = {level: tokenizer.image_tokens(
        load_digits_av(split, seed=seed, image_noise=level).images[:count])
        for level in image_noise_levels}
    audio_tokens = {level: tokenizer.audio_tokens(
        load_digits_av(split, seed=seed, snr_db=level).waveforms[:count])
        for level in snr_levels}
    return PlaygroundData(image_tokens, audio_tokens, clean.labels[:count])
