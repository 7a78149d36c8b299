"""Real multimodal architectures, small enough to read: LLaVA, Flamingo, one token sequence.

One module per design, each readable on its own:

- :mod:`~course_lib.architectures.decoder`: the small LLaMA-like causal LM they all extend.
- :mod:`~course_lib.architectures.llava`: LLaVA, y = LLM([W . ViT(I) ; Embed(T)]): a
  projector maps the frozen vision encoder's patch tokens to the LM's width and the image
  tokens are spliced into the text; trained in two stages.
- :mod:`~course_lib.architectures.flamingo`: Flamingo: a Perceiver resampler gives each image
  its own latents, read by a frozen LM through gated cross-attention,
  h' = h + tanh(alpha) * CrossAttn(h, v), with per-image masking.
- :mod:`~course_lib.architectures.unified`: one causal sequence [image; audio; text] (a tiny
  "Thinker").
- :mod:`~course_lib.architectures.codebook`: image patches as discrete ids in the text
  vocabulary (natively multimodal models).
- :mod:`~course_lib.architectures.sizing`: parameter counts on the ``meta`` device,
  ``requires_grad`` switches, sequence lengths.
- :mod:`~course_lib.architectures.gates`: what a tanh gate lets through (the gate explorer).
- :mod:`~course_lib.architectures.digit_chat`: the digit conversations the models learn from.
- :mod:`~course_lib.architectures.training`: each recipe's training, on a chosen ``device``.
"""

from course_lib.architectures._checks import IGNORE_INDEX
from course_lib.architectures.codebook import PatchCodebook, kmeans
from course_lib.architectures.decoder import (
    DecoderLM,
    LlamaBlock,
    apply_rotary,
    next_token_loss,
    scored_next_token_loss,
)
from course_lib.architectures.flamingo import (
    FlamingoLikeModel,
    PerceiverResampler,
    flamingo_training_stage,
    gate_values,
    media_attention_mask,
)
from course_lib.architectures.gates import (
    GateFlow,
    GateSweep,
    cross_attention_update,
    gate_flow,
    gate_sweep,
)
from course_lib.architectures.llava import (
    LlavaLikeModel,
    LlavaProjector,
    SplicedSequence,
    VisionTower,
    instruction_labels,
    llava_training_stage,
    splice_image_tokens,
)
from course_lib.architectures.sizing import (
    ModelSize,
    count_on_meta,
    count_parameters,
    sequence_lengths,
    set_trainable,
)
from course_lib.architectures.training import (
    pretrain_language_model,
    train_flamingo,
    train_llava_stage,
    train_on,
)
from course_lib.architectures.unified import Thinker
from course_lib.attention import GatedCrossAttentionBlock

__all__ = [
    "GatedCrossAttentionBlock", "PerceiverResampler", "LlavaProjector", "SplicedSequence",
    "splice_image_tokens", "LlamaBlock", "DecoderLM", "LlavaLikeModel", "FlamingoLikeModel",
    "Thinker", "ModelSize", "count_parameters", "count_on_meta", "set_trainable",
    "llava_training_stage", "flamingo_training_stage", "kmeans", "PatchCodebook",
    "GateFlow", "gate_flow", "cross_attention_update", "sequence_lengths", "apply_rotary",
    "IGNORE_INDEX", "VisionTower", "instruction_labels", "next_token_loss",
    "scored_next_token_loss",
    "media_attention_mask", "gate_values", "train_on", "pretrain_language_model",
    "train_llava_stage", "train_flamingo", "GateSweep", "gate_sweep",
]
