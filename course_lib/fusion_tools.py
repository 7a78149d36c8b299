"""What chapter 05 measures fusion models with: evaluation, compression and training.

The models themselves live in :mod:`course_lib.fusion` (which re-exports every name here):

- the digits' inputs, from :mod:`course_lib.fusion_data` (re-exported): :class:`DigitTokenizer`
  (log-mel audio tokens, standardised pixels), :func:`flatten_tokens`,
  :func:`align_by_timestamps`;
- evaluation: :func:`fusion_accuracy`, :func:`fusion_correct` (per-example right/wrong flags
  for :mod:`course_lib.evaluation`), :func:`modality_removal` and :func:`modality_shuffle`
  (how much a model leans on one modality, measured in distribution);
- compression: :func:`quantize_linear_weights`, :func:`linear_weight_count`;
- training: :func:`train_fusion`, a thin layer over :func:`course_lib.train.train`;
- the fusion playground's logic.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from course_lib._validation import (
    ArgumentTypeError,
    check_int,
    check_number,
    check_sequence,
    check_tensor,
    describe,
)
from course_lib.fusion import (
    Features,
    HybridFusion,
    LateFusion,
    modality_dropout,
    zero_fill,
)
from course_lib.fusion_data import (
    DigitTokenizer,
    Standardizer,
    _check_feature_dict,
    align_by_timestamps,
    audio_frame_tokens,
    flatten_tokens,
)
from course_lib.train import (
    Callback,
    History,
    accuracy,
    count_parameters,
    model_device,
    train,
)

__all__ = [
    "DigitTokenizer",
    "PlaygroundData",
    "Standardizer",
    "align_by_timestamps",
    "audio_frame_tokens",
    "build_playground_data",
    "count_parameters",
    "flatten_tokens",
    "fusion_accuracy",
    "fusion_correct",
    "fusion_loss",
    "linear_weight_count",
    "model_inputs",
    "modality_removal",
    "modality_shuffle",
    "playground_accuracies",
    "playground_table",
    "quantize_linear_weights",
    "train_fusion",
]


# ----------------------------------------------------------------------------- evaluation
def _check_model(model: object) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise ArgumentTypeError(f"model must be an nn.Module (a fusion model), got "
                                f"{describe(model)}")
    return model


def _check_labels(labels: object, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
    labels = check_tensor("labels", labels, kind="int", ndim=1)
    rows = {len(value) for value in features.values()}
    if rows and rows != {len(labels)}:
        raise ValueError(f"labels has {len(labels)} rows but the features have {sorted(rows)}")
    return labels


def _on_model_device(model: nn.Module, features: Features) -> dict[str, torch.Tensor]:
    device = model_device(model)
    return {name: value.to(device) for name, value in features.items()}


@torch.no_grad()
def fusion_correct(model: nn.Module, features: Features, labels: torch.Tensor) -> torch.Tensor:
    """Right/wrong flag of each example ``(N,)`` (bool, on the CPU), for intervals and tests.

    Models that need every modality (``requires_all_modalities``) get :func:`zero_fill`
    stand-ins for the missing ones; the others simply see fewer modalities. The features are
    moved to the model's device.
    """
    model = _check_model(model)
    features = _check_feature_dict("features", features)
    labels = _check_labels(labels, features)
    model.eval()
    if getattr(model, "requires_all_modalities", False):
        features = zero_fill(features, model.input_dims)
    logits = model(_on_model_device(model, features))
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"labels must be (N,) = ({len(logits)},), got {tuple(labels.shape)}")
    return (logits.argmax(dim=1).cpu() == labels.cpu())


@torch.no_grad()
def fusion_accuracy(model: nn.Module, features: Features, labels: torch.Tensor) -> float:
    """Accuracy of ``model`` on ``features`` (a subset of its modalities is allowed).

    Models that need every modality (``requires_all_modalities``) get :func:`zero_fill`
    stand-ins for the missing ones; the others simply see fewer modalities.
    """
    model = _check_model(model)
    features = _check_feature_dict("features", features)
    labels = _check_labels(labels, features)
    model.eval()
    if getattr(model, "requires_all_modalities", False):
        features = zero_fill(features, model.input_dims)
    return accuracy(model(_on_model_device(model, features)), labels)


def modality_removal(model: nn.Module, features: Features, labels: torch.Tensor
                     ) -> dict[str, float]:
    """Accuracy with every modality, then with each one removed: ``{"all": .., "no image": ..}``.

    The drop when a modality is removed mixes two things for a model that needs every input:
    how much it relies on the modality, and how it reacts to the zeros put in its place, an
    input it never saw (see :func:`modality_shuffle` for a measurement in distribution).
    """
    features = _check_feature_dict("features", features)
    result = {"all": fusion_accuracy(model, features, labels)}
    for name in features:
        rest = {other: value for other, value in features.items() if other != name}
        if rest:
            result[f"no {name}"] = fusion_accuracy(model, rest, labels)
    return result


def modality_shuffle(model: nn.Module, features: Features, labels: torch.Tensor,
                     seed: int = 0) -> dict[str, float]:
    """Accuracy with every modality, then with each one *shuffled* across the examples.

    Shuffling (permutation importance, Breiman 2001, "Random forests", Machine Learning 45)
    gives each example the real features of another, random example for one modality: every
    input is one the model could meet, but that modality no longer says anything about the
    label. The accuracy that remains is what the model gets from the other modalities, without
    the zero-fill artefact of :func:`modality_removal`.

    Returns:
        ``{"all": .., "image shuffled": .., "audio shuffled": ..}``.
    """
    features = _check_feature_dict("features", features)
    labels = check_tensor("labels", labels, kind="int", ndim=1)
    seed = check_int("seed", seed, minimum=0, maximum=2**63 - 1)
    count = len(labels)
    for name, value in features.items():
        if len(value) != count:
            raise ValueError(f"features[{name!r}] has {len(value)} rows, labels {count}")
    generator = torch.Generator().manual_seed(seed)
    result = {"all": fusion_accuracy(model, features, labels)}
    for name in features:
        order = torch.randperm(count, generator=generator)
        shuffled = dict(features)
        shuffled[name] = features[name][order.to(features[name].device)]
        result[f"{name} shuffled"] = fusion_accuracy(model, shuffled, labels)
    return result


@torch.no_grad()
def quantize_linear_weights(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose Linear weights are stored as 8-bit integers (simulated).

    Symmetric per-row quantisation: each output row gets one float scale ``max|w| / 127`` and
    its weights become integers in [-127, 127] times that scale, so they would take 1 byte
    each instead of 4. The copy computes with the rounded weights, so its accuracy shows
    what the rounding costs.
    """
    quantized = copy.deepcopy(_check_model(model))
    for module in quantized.modules():
        if isinstance(module, nn.Linear):
            scale = module.weight.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 127
            module.weight.copy_((module.weight / scale).round().clamp(-127, 127) * scale)
    return quantized


def linear_weight_count(model: nn.Module) -> tuple[int, int]:
    """(number of Linear weights, number of Linear output rows) in ``model``."""
    _check_model(model)
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    return (sum(layer.weight.numel() for layer in linears),
            sum(layer.weight.shape[0] for layer in linears))


# ----------------------------------------------------------------------------- training
def fusion_loss(model: nn.Module, features: Features, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the model's output, or :meth:`LateFusion.loss` for late fusion."""
    _check_model(model)
    features = _check_feature_dict("features", features)
    labels = _check_labels(labels, features)
    if isinstance(model, LateFusion):
        return model.loss(features, labels)
    return F.cross_entropy(model(features), labels)


def train_fusion(model: nn.Module, tokens: Features, labels: torch.Tensor, *, epochs: int,
                 lr: float = 3e-3, batch_size: int = 64, modality_dropout_p: float = 0.0,
                 seed: int = 0, progress: bool = True, device: torch.device | str | None = None,
                 weight_decay: float = 1e-4,
                 validation: tuple[Features, torch.Tensor] | None = None,
                 callbacks: Sequence[Callback] = ()) -> History:
    """Train a fusion model with :func:`course_lib.train.train` on the modalities it was built for.

    Args:
        tokens: modality -> ``(N, T_m, D_m)``; each model reads them via :func:`model_inputs`
            (hybrid fusion the tokens, the others the flattened vectors).
        labels: ``(N,)`` class indices.
        modality_dropout_p: if > 0, each example of each training batch loses each modality
            with this probability (:func:`modality_dropout`; models that need every modality
            get :func:`zero_fill` stand-ins); the loss is the mean over all examples.
        device: where to train (the model and each batch are moved there).
        validation: optional ``(tokens, labels)`` of a validation split; after every epoch
            its loss and accuracy go to ``history.epochs`` as ``"validation loss"`` and
            ``"validation accuracy"`` (the learning curve).
        callbacks: extra :class:`course_lib.train.Callback` objects.
    """
    _check_model(model)
    if not isinstance(getattr(model, "input_dims", None), Mapping):
        raise ArgumentTypeError(f"model must be a fusion model with input_dims (EarlyFusion, "
                                f"LateFusion, HybridFusion, ...), got {describe(model)}")
    tokens = _check_feature_dict("tokens", tokens)
    labels = _check_labels(labels, tokens)
    modality_dropout_p = check_number("modality_dropout_p", modality_dropout_p, minimum=0,
                                      below=1)
    seed = check_int("seed", seed, minimum=0, maximum=2**63 - 1)
    if validation is not None and (not isinstance(validation, (tuple, list))
                                   or len(validation) != 2):
        raise ArgumentTypeError(f"validation must be a pair (tokens, labels), got "
                                f"{describe(validation)}")
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
            rows = rows.to(labels.device)
            if getattr(model, "requires_all_modalities", False):
                kept = zero_fill(kept, model.input_dims)
            total = total + fusion_loss(model, kept, labels[rows]) * len(rows) / len(labels)
        return total

    validate: Callable[[nn.Module], dict[str, float]] | None = None
    if validation is not None:
        validation_tokens, validation_labels = validation
        lacking = [name for name in names if name not in validation_tokens]
        if lacking:
            raise ValueError(f"validation tokens lack {lacking}, which the model was built for")
        validation_inputs = model_inputs(model, {name: validation_tokens[name] for name in names})

        def validate(trained: nn.Module) -> dict[str, float]:
            features = _on_model_device(trained, validation_inputs)
            targets = validation_labels.to(model_device(trained))
            logits = trained(features)
            if isinstance(trained, LateFusion) and trained.combine != "learned":
                loss = F.nll_loss(logits, targets)  # mean/weighted output log-probabilities
            else:
                loss = F.cross_entropy(logits, targets)
            return {"validation loss": loss.item(),
                    "validation accuracy": accuracy(logits, targets)}

    return train(model, loss_of_batch, [inputs[name] for name in names] + [labels],
                 epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                 seed=seed, progress=progress, device=device, validate=validate,
                 callbacks=callbacks)


# ----------------------------------------------------------------------------- the playground
def model_inputs(model: nn.Module, tokens: Features) -> Features:
    """What each model reads: hybrid fusion the tokens, the others each modality flattened."""
    _check_model(model)
    _check_feature_dict("tokens", tokens)
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

    def __post_init__(self) -> None:
        labels = check_tensor("labels", self.labels, kind="int", ndim=1)
        for name in ("image_tokens", "audio_tokens"):
            table = getattr(self, name)
            if not isinstance(table, dict) or not table:
                raise ArgumentTypeError(f"{name} must be a non-empty dict level -> tokens, got "
                                        f"{describe(table)}")
            for level, tokens in table.items():
                check_number(f"{name}'s level", level, finite=False)
                tokens = check_tensor(f"{name}[{level!r}]", tokens, ndim=3)
                if len(tokens) != len(labels):
                    raise ValueError(f"{name}[{level!r}] has {len(tokens)} rows but labels has "
                                     f"{len(labels)}")

    def tokens(self, image_noise: float, snr_db: float) -> dict[str, torch.Tensor]:
        """The test tokens at one setting (both levels must be among the precomputed ones)."""
        check_number("image_noise", image_noise, finite=False)
        check_number("snr_db", snr_db, finite=False)
        for name, value, table in (("image_noise", image_noise, self.image_tokens),
                                   ("snr_db", snr_db, self.audio_tokens)):
            if value not in table:
                raise ValueError(f"{name} {value} was not precomputed; choose one of "
                                 f"{sorted(table)}")
        return {"image": self.image_tokens[image_noise], "audio": self.audio_tokens[snr_db]}


def _check_models_and_data(models: object, data: object) -> None:
    if not isinstance(models, Mapping) or not models:
        raise ArgumentTypeError(f"models must be a non-empty dict of name -> model, got "
                                f"{describe(models)}")
    for name, model in models.items():
        if not isinstance(model, nn.Module):
            raise ArgumentTypeError(f"models[{name!r}] must be an nn.Module, got "
                                    f"{describe(model)}")
    if not isinstance(data, PlaygroundData):
        raise ArgumentTypeError(f"data must be PlaygroundData (build_playground_data), got "
                                f"{describe(data)}")


def playground_accuracies(models: Mapping[str, nn.Module], data: PlaygroundData,
                          image_noise: float, snr_db: float,
                          dropped: Sequence[str] = ()) -> dict[str, float]:
    """Each model's test accuracy at one degradation setting with some modalities dropped.

    Models that need every modality get zeros for a dropped one (see :func:`fusion_accuracy`).
    """
    _check_models_and_data(models, data)
    dropped = check_sequence("dropped", dropped, of="modality names")
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
    _check_models_and_data(models, data)
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

    if not isinstance(tokenizer, DigitTokenizer):
        raise ArgumentTypeError(f"tokenizer must be a DigitTokenizer, got {describe(tokenizer)}")
    levels = {}
    for name, given in (("image_noise_levels", image_noise_levels), ("snr_levels", snr_levels)):
        levels[name] = check_sequence(name, given, of="levels")
        if len(levels[name]) > 100:
            raise ValueError(f"{name} must hold at most 100 levels, got {len(levels[name])}")
        for index, level in enumerate(levels[name]):
            check_number(f"{name}[{index}]", level, finite=name == "image_noise_levels")
    if num_examples is not None:
        check_int("num_examples", num_examples)
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
