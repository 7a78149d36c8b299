"""Chapter 05's inputs: the digits as tokens (log-mel audio tokens, standardised pixels).

:class:`DigitTokenizer` turns the paired digits into ``{"image": (N, 1, 64), "audio":
(N, 5, 32)}``; :func:`flatten_tokens` joins tokens into vectors; :func:`align_by_timestamps`
undoes known recording delays. :mod:`course_lib.fusion_tools` (and so :mod:`course_lib.fusion`)
re-exports every name.
"""


from collections.abc import Mapping

import torch
from torch.nn import functional as F

from course_lib._validation import (
    ArgumentTypeError,
    check_flag,
    check_int,
    check_tensor,
    describe,
)
from course_lib.audio import LogMelFrontEnd
from course_lib.fusion import (
    Features,
)


def _check_feature_dict(name: str, features: object) -> dict[str, torch.Tensor]:
    """modality name -> float tensor (B, ...) with one B, as a dict (numpy arrays converted)."""
    if not isinstance(features, Mapping) or not features:
        raise ArgumentTypeError(f"{name} must be a non-empty dict of modality -> tensor, got "
                                f"{describe(features)}")
    checked = {}
    for modality, value in features.items():
        if not isinstance(modality, str):
            raise ArgumentTypeError(f"{name} must be keyed by modality names, got the key "
                                    f"{describe(modality)}")
        checked[modality] = check_tensor(f"{name}[{modality!r}]", value)
    rows = {modality: len(value) for modality, value in checked.items() if value.dim()}
    if len(set(rows.values())) > 1:
        raise ValueError(f"{name} disagree on the number of rows (batch size B): {rows}")
    return checked


def audio_frame_tokens(waveforms: torch.Tensor, sample_rate: int = 16000, n_mels: int = 32,
                       num_tokens: int = 5, front_end: LogMelFrontEnd | None = None
                       ) -> torch.Tensor:
    """Waveforms as a short token sequence: log-mel frames averaged into ``num_tokens`` chunks.

    The log-mel frames come from ``front_end`` (by default
    ``LogMelFrontEnd(sample_rate, n_mels=n_mels)``: 25 ms windows, 10 ms hop, each clip's own
    length). One second at 100 frames/s becomes 5 tokens of 0.2 s each (with the defaults).

    Shape:
        waveforms: ``(N, L)``; output ``(N, num_tokens, front_end.n_mels)``.
    """
    waveforms = check_tensor("waveforms", waveforms, finite=True)
    check_int("sample_rate", sample_rate, minimum=1, maximum=192_000)
    check_int("n_mels", n_mels, minimum=1, maximum=512)
    check_int("num_tokens", num_tokens, maximum=10_000)
    if waveforms.ndim != 2:
        raise ValueError(f"waveforms must be (N, L), got shape {tuple(waveforms.shape)}")
    if num_tokens < 1:
        raise ValueError(f"num_tokens must be positive, got {num_tokens}")
    if front_end is None:
        front_end = LogMelFrontEnd(sample_rate, n_mels=n_mels)
    elif not isinstance(front_end, LogMelFrontEnd):
        raise ArgumentTypeError(f"front_end must be a LogMelFrontEnd (course_lib.audio) or None, "
                                f"got {describe(front_end)}")
    log_mel = front_end(waveforms)  # (N, n_mels, frames)
    if log_mel.shape[-1] < num_tokens:
        raise ValueError(f"num_tokens {num_tokens} exceeds the {log_mel.shape[-1]} frames")
    return F.adaptive_avg_pool1d(log_mel, num_tokens).transpose(1, 2)


class Standardizer:
    """Per-feature standardisation ``(x - mean) / std`` with statistics from training tokens.

    Shape:
        tokens: ``(N, T, D)`` or ``(N, D)``; statistics ``(D,)``.
    """

    def __init__(self, training_tokens: torch.Tensor) -> None:
        training_tokens = check_tensor("training_tokens", training_tokens, finite=True)
        if training_tokens.ndim < 2 or training_tokens[..., 0].numel() < 2:
            raise ValueError(f"training_tokens must be (N, D) or (N, T, D) with at least two rows, "
                             f"got shape {tuple(training_tokens.shape)}")
        flat = training_tokens.reshape(-1, training_tokens.shape[-1])
        self.mean, self.std = flat.mean(dim=0), flat.std(dim=0).clamp_min(1e-6)

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = check_tensor("tokens", tokens, min_ndim=1).to(self.mean.dtype)
        if tokens.shape[-1] != len(self.mean):
            raise ValueError(f"tokens have width {tokens.shape[-1]}, but the statistics were "
                             f"fitted on width {len(self.mean)}")
        return (tokens - self.mean) / self.std


class DigitTokenizer:
    """The chapter's inputs: each image as one token of its 64 pixels, each clip as 5 tokens.

    Each audio token averages 0.2 s of log-mel frames (32 mel bands) from
    :attr:`front_end`, ``LogMelFrontEnd(16000, 400, 160, n_mels, clip_seconds=1.0)``. Pixels
    and mel bands are standardised with statistics of the training data given to the
    constructor.

    Shape:
        images: ``(N, 1, 8, 8)``; waveforms: ``(N, 16000)``;
        output: ``{"image": (N, 1, 64), "audio": (N, num_audio_tokens, 32)}``.
    """

    def __init__(self, train_images: torch.Tensor, train_waveforms: torch.Tensor,
                 num_audio_tokens: int = 5, n_mels: int = 32) -> None:
        self.num_audio_tokens = check_int("num_audio_tokens", num_audio_tokens, minimum=1,
                                          maximum=10_000)
        self.n_mels = check_int("n_mels", n_mels, minimum=1, maximum=512)
        train_images = check_tensor("train_images", train_images, ndim=4, finite=True)
        check_tensor("train_waveforms", train_waveforms, ndim=2)
        self.front_end = LogMelFrontEnd(sample_rate=16000, n_fft=400, hop_length=160,
                                        n_mels=self.n_mels, clip_seconds=1.0)
        self.image_standardizer = Standardizer(train_images.flatten(1))
        raw_audio = self.audio_tokens(train_waveforms, standardize=False)
        self.audio_standardizer = Standardizer(raw_audio)

    def image_tokens(self, images: torch.Tensor) -> torch.Tensor:
        """Standardised pixels, one token per image: (N, 1, H, W) -> (N, 1, H * W)."""
        images = check_tensor("images", images)
        if images.ndim != 4:
            raise ValueError(f"images must be (N, 1, H, W), got shape {tuple(images.shape)}")
        pixels = len(self.image_standardizer.mean)
        if images[0].numel() != pixels:
            raise ValueError(f"images have {images[0].numel()} pixels each (shape "
                             f"{tuple(images.shape)}), but the tokenizer was fitted on {pixels}")
        return self.image_standardizer(images.flatten(1))[:, None]

    def audio_tokens(self, waveforms: torch.Tensor, standardize: bool = True) -> torch.Tensor:
        """Log-mel tokens of the clips: (N, L) -> (N, num_audio_tokens, n_mels)."""
        standardize = check_flag("standardize", standardize)
        tokens = audio_frame_tokens(waveforms, num_tokens=self.num_audio_tokens,
                                    front_end=self.front_end)
        return self.audio_standardizer(tokens) if standardize else tokens

    def __call__(self, images: torch.Tensor, waveforms: torch.Tensor) -> dict[str, torch.Tensor]:
        images = check_tensor("images", images, min_ndim=1)
        waveforms = check_tensor("waveforms", waveforms, min_ndim=1)
        if len(images) != len(waveforms):
            raise ValueError(f"images and waveforms must pair up, got {len(images)} images and "
                             f"{len(waveforms)} waveforms")
        return {"image": self.image_tokens(images), "audio": self.audio_tokens(waveforms)}


def flatten_tokens(features: Features) -> dict[str, torch.Tensor]:
    """Each modality's tokens ``(B, T, D)`` joined into one vector ``(B, T*D)`` (keeps order).

    Vectors ``(B, D)`` pass through unchanged.
    """
    features = _check_feature_dict("features", features)
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
    waveforms = check_tensor("waveforms", waveforms)
    shifts = check_tensor("shifts", shifts, kind="int")
    if waveforms.ndim != 2 or shifts.shape != waveforms.shape[:1]:
        raise ValueError(f"waveforms must be (N, L) and shifts (N,), got "
                         f"{tuple(waveforms.shape)} and {tuple(shifts.shape)}")
    if (shifts < 0).any() or (shifts >= waveforms.shape[1]).any():
        raise ValueError(f"shifts must be in [0, {waveforms.shape[1]}), got {shifts.tolist()}")
    return torch.stack([row.roll(-shift) for row, shift in zip(waveforms, shifts.tolist(),
                                                               strict=True)])
