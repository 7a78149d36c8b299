"""A tiny model in which cross-modal attention has to emerge: chapter 03's trained experiment.

One sequence holds five tokens: the four image tiles of a digit mosaic (each tile's 64 pixels
embedded, plus a learned position vector) and, last, a question token naming a corner
(:mod:`course_lib.data.mosaic`). One causal self-attention layer (the course's
:class:`~course_lib.attention.MultiHeadSelfAttention`) runs over the sequence, and the digit is
read from the question's output. Nothing tells the question where to look: at initialisation
its attention is spread over all five tokens (about 1/5 each). Training on the answers is the
only thing that can make it attend to the one tile that holds the answer.

:func:`train_mosaic_model` trains with :func:`course_lib.train.train` and logs, after every
step, the attention the question puts on the image tokens and on the right tile, and the
accuracy on a held-out set.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from course_lib._validation import (
    ArgumentTypeError,
    check_int,
    check_tensor,
    describe,
    to_weights_dtype,
)
from course_lib.attention import MultiHeadSelfAttention, causal_mask
from course_lib.attention_masks import _check_device
from course_lib.data.mosaic import NUM_TILES, TILE_SIZE, DigitMosaics
from course_lib.train import History, train

NUM_DIGITS = 10


@dataclass(frozen=True)
class MosaicModelConfig:
    """Sizes of :class:`MosaicQuestionModel`: token width, heads and the MLP head's width."""

    dim: int = 32
    num_heads: int = 1
    hidden: int = 64

    def __post_init__(self) -> None:
        for name in ("dim", "num_heads", "hidden"):
            check_int(name, getattr(self, name), minimum=1, maximum=4096)
        if self.dim % self.num_heads:
            raise ValueError(f"dim {self.dim} is not divisible by num_heads {self.num_heads}")


class MosaicQuestionModel(nn.Module):
    """Four image tokens and one question token, one self-attention layer, a digit classifier.

    Shape:
        tiles: (B, 4, 8, 8), questions: (B,) int64 in 0..3 -> logits (B, 10);
        ``question_attention`` after a forward: (B, 5), the question's weights over
        [tile 0, tile 1, tile 2, tile 3, question] (mean over heads, detached).
    """

    def __init__(self, config: MosaicModelConfig = MosaicModelConfig()) -> None:
        super().__init__()
        if not isinstance(config, MosaicModelConfig):
            raise ArgumentTypeError(f"config must be a MosaicModelConfig, got {describe(config)}")
        if config.dim % config.num_heads:
            raise ValueError(f"config.dim {config.dim} is not divisible by config.num_heads "
                             f"{config.num_heads}")
        self.config = config
        self.tile_embedding = nn.Linear(TILE_SIZE * TILE_SIZE, config.dim)
        self.tile_position = nn.Parameter(torch.randn(NUM_TILES, config.dim) * 0.1)
        self.question_embedding = nn.Embedding(NUM_TILES, config.dim)
        self.norm = nn.LayerNorm(config.dim)
        self.attention = MultiHeadSelfAttention(config.dim, config.num_heads)
        self.classifier = nn.Sequential(nn.LayerNorm(config.dim),
                                        nn.Linear(config.dim, config.hidden), nn.GELU(),
                                        nn.Linear(config.hidden, NUM_DIGITS))
        self.register_buffer("mask", causal_mask(NUM_TILES + 1), persistent=False)
        self.question_attention: Tensor | None = None

    def tokens(self, tiles: Tensor, questions: Tensor) -> Tensor:
        """The sequence [4 tile tokens, 1 question token], (B, 5, dim).

        Float tiles of any floating dtype (or a numpy array) are cast to the weights' dtype;
        questions must be integers (any integer dtype).
        """
        dims: dict = {}
        tiles = to_weights_dtype("tiles", tiles, self, kind="float", finite=True,
                                 shape=("B", NUM_TILES, TILE_SIZE, TILE_SIZE), dims=dims)
        questions = check_tensor("questions", questions, kind="int", shape=("B",), dims=dims)
        questions = questions.long().to(tiles.device)
        if len(questions) and (questions.min() < 0 or questions.max() >= NUM_TILES):
            raise ValueError(f"questions must be in 0..{NUM_TILES - 1}, got values in "
                             f"{questions.min().item()}..{questions.max().item()}")
        image_tokens = self.tile_embedding(tiles.flatten(2)) + self.tile_position  # (B, 4, D)
        question_token = self.question_embedding(questions)[:, None]               # (B, 1, D)
        return torch.cat([image_tokens, question_token], dim=1)

    def forward(self, tiles: Tensor, questions: Tensor,
                tile_mask: Tensor | None = None) -> Tensor:
        """Logits for the digit in the asked corner.

        Args:
            tile_mask: optional (B, 4) bool, True = the tile may be attended to; False hides a
                tile from the question (used for the ablation: hide the tile it attends to).
        """
        tokens = self.tokens(tiles, questions)
        padding = None
        if tile_mask is not None:
            tile_mask = check_tensor("tile_mask", tile_mask, kind="bool",
                                     shape=(len(tokens), NUM_TILES)).to(tokens.device)
            keep_question = torch.ones_like(tile_mask[:, :1])
            padding = torch.cat([tile_mask, keep_question], dim=1)  # (B, 5)
        attended = self.attention(self.norm(tokens), attention_mask=self.mask,
                                  padding_mask=padding)
        self.question_attention = self.attention.last_weights[:, :, -1].mean(1)  # (B, 5)
        return self.classifier(tokens[:, -1] + attended[:, -1])


def _check_model_and_data(model: object, data: object, name: str) -> None:
    if not isinstance(model, MosaicQuestionModel):
        raise ArgumentTypeError(f"model must be a MosaicQuestionModel, got {describe(model)}")
    if not isinstance(data, DigitMosaics):
        raise ArgumentTypeError(f"{name} must be DigitMosaics (make_digit_mosaics), got "
                                f"{describe(data)}")
    if len(data) == 0:
        raise ValueError(f"{name} must hold at least one mosaic")


@dataclass
class MosaicEvaluation:
    """Accuracy and the question's attention on a set of mosaics.

    Shape: ``attention``: (N, 5) over [4 tiles, question]; ``predictions``: (N,).
    """

    accuracy: float
    mass_on_image: float
    mass_on_answer_tile: float
    attention: Tensor
    predictions: Tensor


@torch.no_grad()
def evaluate_mosaic_model(model: MosaicQuestionModel, data: DigitMosaics,
                          tile_mask: Tensor | None = None) -> MosaicEvaluation:
    """Accuracy on ``data`` and the mean attention mass on the image tiles and the right tile.

    Shape: ``tile_mask`` (N, 4) bool, True = the question may attend to the tile.

    Raises:
        ValueError / TypeError: naming ``model`` (not a MosaicQuestionModel), ``data`` (not
            DigitMosaics, or empty) or ``tile_mask`` (not a bool (N, 4) tensor).
    """
    _check_model_and_data(model, data, "data")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    mask = None if tile_mask is None else tile_mask.to(device)
    logits = model(data.tiles.to(device), data.questions.to(device), tile_mask=mask)
    model.train(was_training)
    attention = model.question_attention.cpu()
    predictions = logits.argmax(1).cpu()
    rows = torch.arange(len(data))
    return MosaicEvaluation(
        accuracy=(predictions == data.answers).float().mean().item(),
        mass_on_image=attention[:, :NUM_TILES].sum(1).mean().item(),
        mass_on_answer_tile=attention[rows, data.questions].mean().item(),
        attention=attention,
        predictions=predictions,
    )


def train_mosaic_model(model: MosaicQuestionModel, train_data: DigitMosaics,
                       monitor_data: DigitMosaics, *, epochs: int, batch_size: int = 64,
                       lr: float = 3e-3, seed: int = 0, progress: bool = False,
                       device: str | torch.device | None = None) -> History:
    """Train on ``train_data`` with :func:`course_lib.train.train`, logging after every step.

    ``device`` (default: where the model already is) receives the model and every batch.
    After each step the history's ``logs`` get ``mass_on_image`` and ``mass_on_answer_tile``
    (the question's mean attention on the 4 tiles and on the asked tile, in that step's
    batch), and ``monitor_accuracy``, ``monitor_mass_on_answer_tile`` measured on
    ``monitor_data`` (a held-out set).
    """
    _check_model_and_data(model, monitor_data, "monitor_data")
    _check_model_and_data(model, train_data, "train_data")
    device = _check_device(device) if device is not None else next(model.parameters()).device
    model.to(device)
    tensors = [train_data.tiles.to(device), train_data.questions.to(device),
               train_data.answers.to(device)]
    batch_mass: dict[str, float] = {}
    loss_function = nn.CrossEntropyLoss()

    def loss_of_batch(batch: tuple[Tensor, ...]) -> Tensor:
        tiles, questions, answers = batch
        loss = loss_function(model(tiles, questions), answers)
        attention = model.question_attention
        rows = torch.arange(len(questions), device=attention.device)
        batch_mass["image"] = attention[:, :NUM_TILES].sum(1).mean().item()
        batch_mass["answer"] = attention[rows, questions].mean().item()
        return loss

    def on_step(history: History) -> None:
        history.log("mass_on_image", batch_mass["image"])
        history.log("mass_on_answer_tile", batch_mass["answer"])
        held_out = evaluate_mosaic_model(model, monitor_data)
        history.log("monitor_accuracy", held_out.accuracy)
        history.log("monitor_mass_on_answer_tile", held_out.mass_on_answer_tile)

    return train(model, loss_of_batch, tensors, epochs=epochs, batch_size=batch_size, lr=lr,
                 seed=seed, progress=progress, on_step=on_step, device=device)


# Illustrative (not measured) weights of the answer token "cat" in the unified sequence
# "<image> What animal is this?": chapter 03 plots them, then trains a model that really
# learns to put its attention on the image.
ILLUSTRATIVE_CAT_WEIGHTS = {"<image>": 0.4, "What": 0.1, "animal": 0.3, "is": 0.05, "this": 0.15}
