"""What each benchmark design costs: parameters, the LM's sequence length, FLOPs per answer.

Part of :mod:`course_lib.benchmark` (import :func:`design_cost` from there). FLOPs are counted
as 2 per multiply-add with :func:`course_lib.budget.attention_cost` and
:func:`course_lib.budget.mlp_cost`, as ``torch.utils.flop_counter`` counts them.
"""

from __future__ import annotations

from torch import nn

from course_lib._validation import check_int
from course_lib.architectures import DecoderLM, FlamingoLikeModel, LlavaLikeModel, Thinker
from course_lib.benchmark import (
    INPUT_DIM,
    NUM_CLASSES,
    PROMPT,
    DualEncoderClassifier,
    _check_design,
)
from course_lib.budget import attention_cost, mlp_cost
from course_lib.fusion import EarlyFusion, HybridFusion, LateFusion
from course_lib.train import count_parameters

__all__ = ["design_cost"]


def _linear(tokens: int, d_in: int, d_out: int) -> int:
    return 2 * tokens * d_in * d_out  # a Linear layer on `tokens` positions, 2 FLOPs per MAC


def _sequential(layers: nn.Sequential) -> int:
    return sum(_linear(1, m.in_features, m.out_features) for m in layers
               if isinstance(m, nn.Linear))


def _lm_cost(lm: DecoderLM, length: int) -> tuple[int, int]:
    ff = lm.blocks[0].gate_proj.out_features
    attention = attention_cost(length, lm.dim, len(lm.blocks)).total_flops
    return attention, mlp_cost(length, lm.dim, ff, len(lm.blocks), gated=True) + _linear(
        1, lm.dim, lm.vocab_size)


def design_cost(model: nn.Module, image_tokens: int = 1, audio_tokens: int = 5
                ) -> dict[str, int | None]:
    """Parameters, the LM's sequence length and the FLOPs of one answer (batch of one).

    FLOPs: 2 per multiply-add of every matrix product: attention (:func:`attention_cost`:
    Q/K/V/output projections and the dense score and value products), feed-forward stacks
    (:func:`mlp_cost`) and every other Linear layer (input projections, classifier MLPs,
    heads at the one answer position). Not counted: norms, activations, softmax, pooling,
    embedding look-ups, biases (as ``torch.utils.flop_counter`` counts).

    Returns:
        ``parameters``, ``trainable``, ``lm sequence`` (None without an LM),
        ``attention flops``, ``mlp flops`` (every non-attention matrix product), ``flops``.
    """
    _check_design(model)
    image_tokens = check_int("image_tokens", image_tokens, minimum=0, maximum=10**6)
    audio_tokens = check_int("audio_tokens", audio_tokens, minimum=0, maximum=10**6)
    lm_length = None
    tokens = image_tokens + audio_tokens
    if isinstance(model, EarlyFusion):
        attention, mlp = 0, _sequential(model.net)
    elif isinstance(model, LateFusion):
        attention, mlp = 0, sum(_sequential(m) for m in model.models.values())
    elif isinstance(model, DualEncoderClassifier):  # two towers, then 10 cosines each
        attention = 0
        mlp = sum(_sequential(m) + _linear(1, m[-1].out_features, NUM_CLASSES)
                  for m in model.towers.values())
    elif isinstance(model, HybridFusion):
        d, depth = model.d_model, len(model.blocks)
        ff = model.blocks[0].feed_forward[0].out_features
        length = 1 + tokens  # the fusion token, then every modality token
        attention = attention_cost(length, d, depth).total_flops
        mlp = mlp_cost(length, d, ff, depth, gated=False) + _linear(tokens, INPUT_DIM, d) + \
            _linear(1, d, NUM_CLASSES)
    elif isinstance(model, Thinker):
        d, depth = model.dim, len(model.blocks)
        ff = model.blocks[0].feed_forward[0].out_features
        lm_length = tokens + len(PROMPT) - 1
        attention = attention_cost(lm_length, d, depth).total_flops
        mlp = mlp_cost(lm_length, d, ff, depth, gated=False) + _linear(tokens, INPUT_DIM, d) + \
            _linear(1, d, model.vocab_size)
    elif isinstance(model, LlavaLikeModel):
        lm, d = model.language_model, model.language_model.dim
        lm_length = tokens + len(PROMPT) - 1
        attention, mlp = _lm_cost(lm, lm_length)
        mlp += _linear(tokens, INPUT_DIM, d) + _linear(tokens, d, d)  # the 2-layer projector
    elif isinstance(model, FlamingoLikeModel):
        lm, resampler = model.language_model, model.resampler
        lm_length = len(PROMPT)
        attention, mlp = _lm_cost(lm, lm_length)
        latents = resampler.latents.shape[0]
        for layer in resampler.layers:  # latents attend to [media; latents]
            attention += attention_cost(latents, INPUT_DIM, 1, key_length=tokens + latents
                                        ).total_flops
            mlp += mlp_cost(latents, INPUT_DIM, layer["feed_forward"][0].out_features, 1,
                            gated=False)
        for block in model.cross_blocks:  # every text token attends to the latents
            attention += attention_cost(lm_length, lm.dim, 1, key_length=latents).total_flops
            mlp += mlp_cost(lm_length, lm.dim, block.feed_forward[0].out_features, 1,
                            gated=False)
    else:
        raise ValueError(f"model must be one of the benchmark's designs, got "
                         f"{type(model).__name__}")
    return {"parameters": count_parameters(model),
            "trainable": count_parameters(model, trainable_only=True),
            "lm sequence": lm_length, "attention flops": attention, "mlp flops": mlp,
            "flops": attention + mlp}
