"""Checkers for chapter 06 (architectures): LLaVA's splice and Flamingo's gated residual.

Each checker calls the learner's function on inputs it controls, compares with the library
(:func:`course_lib.architectures.splice_image_tokens`, :func:`course_lib.architectures.gates.
gate_flow`), recognises the typical mistakes (a splice off by one, the placeholder kept, a
gate without tanh or with a sigmoid) and prints "Well done!" or a precise hint. It never raises.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from course_lib.architectures import splice_image_tokens
from course_lib.architectures.gates import gate_flow
from course_lib.checks._common import CheckResult, Failed, call_learner, close, guarded, verdict
from course_lib.checks.ch05 import _tensor

IMAGE_ID = 9
WIDTH = 4
_LIBRARY_NAMES = {"splice_image_tokens", "gate_flow", "GatedCrossAttentionBlock"}


def _uses_library(function: Any, names: set[str]) -> list[str]:
    code = getattr(function, "__code__", None)
    return sorted(names & set(code.co_names)) if code is not None else []


# ----------------------------------------------------------------------------- exercise 1
def _splice_case(rows: list[list[int]], image_length: int, seed: int
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(text_embeddings (B, T, D), input_ids (B, T), image_tokens (I, N, D)); every value is
    distinct and non-zero, image tokens far from text tokens."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.tensor(rows)
    text = torch.rand(*input_ids.shape, WIDTH, generator=generator) + 0.5
    count = int((input_ids == IMAGE_ID).sum())
    images = torch.rand(count, image_length, WIDTH, generator=generator) + 10.0
    return text, input_ids, images


# (rows of input_ids, tokens per image): an image in the middle, at position 0, at the end,
# rows with 2 and 0 images (padding), three rows, a one-token image, two images in a row.
SPLICE_CASES = (
    ([[1, 2, IMAGE_ID, 3, 4]], 3),
    ([[IMAGE_ID, 5, 6]], 2),
    ([[5, 6, 7, IMAGE_ID]], 4),
    ([[IMAGE_ID, 1, IMAGE_ID, 2], [3, 4, 5, 6]], 3),
    ([[1, IMAGE_ID, 2], [IMAGE_ID, 3, 4], [5, 6, IMAGE_ID]], 2),
    ([[1, IMAGE_ID, 2, 3]], 1),
    ([[1, IMAGE_ID, IMAGE_ID, 2]], 2),
)


def _variant(text: torch.Tensor, ids: torch.Tensor, images: torch.Tensor, mode: str
             ) -> torch.Tensor:
    """The splice with one typical mistake, rows padded on the right with zeros."""
    rows, image = [], 0
    order = list(range(len(images)))
    if mode == "images reversed":
        order = order[::-1]
    for row in range(len(ids)):
        pieces = []
        for position, token in enumerate(ids[row].tolist()):
            if token != IMAGE_ID:
                if not (mode == "drops the next token" and position > 0
                        and ids[row, position - 1] == IMAGE_ID):
                    pieces.append(text[row, position:position + 1])
                continue
            block = images[order[image]]
            image += 1
            if mode == "placeholder kept before":
                pieces += [text[row, position:position + 1], block]
            elif mode == "placeholder kept after":
                pieces += [block, text[row, position:position + 1]]
            elif mode == "replaces the token before" and pieces:
                pieces[-1] = block
            else:
                pieces.append(block)
        rows.append(torch.cat(pieces))
    length = max(len(row) for row in rows)
    out = text.new_zeros(len(rows), length, text.shape[-1])
    for index, row in enumerate(rows):
        out[index, :len(row)] = row
    return out


_SPLICE_HINTS = {
    "placeholder kept before": (
        "the placeholder's own embedding is still there, before the image: it is replaced by "
        "the image tokens (a row grows by N - 1 per image, not N)."),
    "placeholder kept after": (
        "the placeholder's own embedding is still there, after the image: it is replaced by the "
        "image tokens (a row grows by N - 1 per image, not N)."),
    "drops the next token": (
        "off by one: the text token right after the placeholder is missing. Keep "
        "text[position + 1:], everything after the placeholder."),
    "replaces the token before": (
        "off by one: the image replaced the text token before the placeholder. Cut at the "
        "placeholder: text[:position], image, text[position + 1:]."),
    "images reversed": (
        "the images are in the wrong order: fill the placeholders in reading order (row 0 "
        "first, left to right) with image_tokens[0], image_tokens[1], ..."),
}


def _splice_call(case: tuple) -> str:
    rows, image_length = case
    return f"my_splice_image_tokens(input_ids={rows}, {image_length} tokens per image)"


def _mismatch(learner: Callable) -> None:
    """Counts that disagree must raise ValueError."""
    for rows, images in (([[1, IMAGE_ID, 2, IMAGE_ID]], 1), ([[1, IMAGE_ID, 2]], 2)):
        text, ids, _ = _splice_case(rows, 2, seed=0)
        tokens = torch.rand(images, 2, WIDTH) + 10.0
        placeholders = int((ids == IMAGE_ID).sum())
        call = (f"my_splice_image_tokens with {placeholders} <image> placeholder(s) and "
                f"{images} image(s)")

        def attempt(text: torch.Tensor = text, ids: torch.Tensor = ids,
                    tokens: torch.Tensor = tokens) -> bool:
            """True when the learner's function refuses the mismatch with ValueError."""
            try:
                learner(text, ids, tokens, IMAGE_ID)
            except ValueError:
                return True
            return False

        if call_learner(attempt, exercise="check_splice", name=call,
                        hint=lambda error: "Check the counts first and raise ValueError, "
                                           "naming both numbers."):
            continue
        raise Failed(f"Not yet: {call} returned a result; it should raise ValueError (one image "
                     f"per placeholder), so that a prompt and its images never silently "
                     f"disagree.")


@guarded
def check_splice(my_splice_image_tokens: Callable[..., torch.Tensor]) -> CheckResult:
    """Exercise 1: ``my_splice_image_tokens(text_embeddings, input_ids, image_tokens,
    image_token_id) -> (B, L, D)``.

    Each ``<image>`` placeholder is replaced by the N tokens of one image (in reading order),
    rows are padded on the right with zeros to the longest, and a count mismatch raises
    ``ValueError``. Compared with :func:`course_lib.architectures.splice_image_tokens` (its
    ``embeddings``) on a batch of 1, an image at position 0 and at the end, rows with two and
    no images, a one-token image and two images side by side.
    """
    for case in SPLICE_CASES:
        rows, image_length = case
        text, ids, images = _splice_case(rows, image_length, seed=len(rows) + image_length)
        given = (text.clone(), ids.clone(), images.clone())
        got = call_learner(my_splice_image_tokens, *given, IMAGE_ID, exercise="check_splice")
        call = _splice_call(case)
        if hasattr(got, "embeddings") and not isinstance(got, torch.Tensor):
            raise Failed(f"Not yet: {call} returned {type(got).__name__}; return the embeddings "
                         f"tensor (B, L, D) itself.")
        expected = splice_image_tokens(text, ids, images, IMAGE_ID).embeddings
        if isinstance(got, torch.Tensor) and got.shape != expected.shape and got.ndim == 3:
            for mode, hint in _SPLICE_HINTS.items():
                if close(got, _variant(text, ids, images, mode)):
                    raise Failed(f"Not yet: {call} has shape {tuple(got.shape)}, expected "
                                 f"{tuple(expected.shape)}. Hint: {hint}")
        got = _tensor(got, call, tuple(expected.shape))
        if close(got, expected):
            continue
        for mode, hint in _SPLICE_HINTS.items():
            if close(got, _variant(text, ids, images, mode)):
                raise Failed(f"Not yet: {call} is not the splice. Hint: {hint}")
        wrong = (got - expected).abs().sum(dim=-1) > 1e-5
        row, position = (int(i) for i in wrong.nonzero()[0])
        padding = bool((expected[row, position] == 0).all() or (got[row, position] == 0).all())
        hint = ("rows shorter than the longest are padded on the right with zeros."
                if padding else
                "build each row as text[:p], image, text[p + 1:] at every placeholder p, "
                "then pad the rows on the right with zeros.")
        raise Failed(f"Not yet: {call} differs at row {row}, position {position}. Hint: {hint}")
    _mismatch(my_splice_image_tokens)
    library = _uses_library(my_splice_image_tokens, _LIBRARY_NAMES)
    if library:
        raise Failed(f"Not yet: the tensors are right, but my_splice_image_tokens calls "
                     f"{', '.join(library)} from the library. Write the splice yourself: cut "
                     f"each row at its placeholders and concatenate.")
    return verdict(True, f"Well done! my_splice_image_tokens agrees with the library on all "
                         f"{len(SPLICE_CASES)} batches (an image at position 0 and at the end, "
                         f"rows padded on the right) and refuses a count mismatch. With 576 "
                         f"image tokens and 50 text tokens, one placeholder gives 576 + 50 = "
                         f"{576 + 50} positions.")


# ----------------------------------------------------------------------------- exercise 2
GATE_CASES = ((0.0, (2, 3, 8)), (0.5, (2, 3, 8)), (1.0, (1, 1, 4)), (-0.7, (2, 3, 8)),
              (-3.0, (4, 8)), (4.0, (1, 5, 8)), (0.1, (3, 8)))


def _gate_variants(alpha: float) -> dict[str, float]:
    """What the update is multiplied by, with each typical mistake."""
    return {"no tanh": alpha, "sigmoid": 1 / (1 + math.exp(-alpha)),
            "tanh of |alpha|": math.tanh(abs(alpha)), "sigmoid - 1/2": 1 / (1 + math.exp(-alpha))
            - 0.5}


_GATE_HINTS = {
    "no tanh": ("the gate is tanh(alpha), not alpha itself: tanh keeps it between -1 and 1, "
                "so a large alpha cannot blow up the update."),
    "sigmoid": ("you used a sigmoid: sigmoid(0) = 0.5, so the block is not the identity at "
                "alpha = 0. Flamingo's gate is tanh(alpha), which is 0 at 0."),
    "tanh of |alpha|": ("a negative alpha gives a negative gate, tanh(alpha) < 0: do not take "
                        "an absolute value."),
    "sigmoid - 1/2": ("that gate is 0 at 0, but it is sigmoid(alpha) - 1/2, not tanh(alpha) "
                      "(half as steep at 0, at most 1/2)."),
    "interpolation": ("you interpolated, (1 - g) * x + g * update: the residual keeps x "
                      "whole, x + tanh(alpha) * update."),
    "gate on x": "the gate multiplies the update, not x: x + tanh(alpha) * update.",
}


def _gate_inputs(shape: tuple[int, ...], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=generator),
            5 * torch.randn(*shape, generator=generator))


@guarded
def check_gated_residual(gated_residual: Callable[[torch.Tensor, torch.Tensor, torch.Tensor],
                                                  torch.Tensor]) -> CheckResult:
    """Exercise 2: ``gated_residual(x, update, alpha) -> x + tanh(alpha) * update``.

    ``alpha`` is a 0-d tensor (the gate's parameter). Compared with
    :func:`course_lib.architectures.gates.gate_flow` for alpha = 0 (exactly the identity,
    ``torch.equal``), positive, negative and saturating values and shapes (1, 1, 4) to (4, 8);
    the gradient must reach alpha (d/d alpha = (1 - tanh^2 alpha) * update).
    """
    pending = []
    for index, (alpha, shape) in enumerate(GATE_CASES):
        x, update = _gate_inputs(shape, seed=index)
        given_x, given_update = x.clone(), update.clone()
        parameter = torch.tensor(alpha, requires_grad=True)
        call = f"gated_residual(x {shape}, update, alpha={alpha})"
        got = call_learner(gated_residual, given_x, given_update, parameter,
                           exercise="check_gated_residual")
        if not (torch.equal(given_x, x) and torch.equal(given_update, update)):
            raise Failed(f"Not yet: {call} changed x or update in place (x += ...); return a "
                         f"new tensor, x + tanh(alpha) * update.")
        got = _tensor(got, call, shape)
        reference = gate_flow(alpha, x.flatten(), update.flatten()).output.reshape(shape)
        if alpha == 0.0 and not torch.equal(got.detach(), x):
            if close(got, x + 0.5 * update):
                hint = _GATE_HINTS["sigmoid"]
            elif close(got, update):
                hint = _GATE_HINTS["interpolation"]
            else:
                hint = "at alpha = 0, tanh(0) = 0: the output must be x itself, exactly."
            raise Failed(f"Not yet: {call} is not exactly x (torch.equal). Hint: {hint}")
        if not close(got, reference, atol=1e-5):
            gate = math.tanh(alpha)
            guesses = {name: x + factor * update
                       for name, factor in _gate_variants(alpha).items()}
            guesses["interpolation"] = (1 - gate) * x + gate * update
            guesses["gate on x"] = gate * x + update
            for mistake, value in guesses.items():
                if close(got, value, atol=1e-5):
                    raise Failed(f"Not yet: {call} differs from x + tanh(alpha) * update. "
                                 f"Hint: {_GATE_HINTS[mistake]}")
            raise Failed(f"Not yet: {call} differs from x + tanh(alpha) * update (tanh({alpha}) "
                         f"= {gate:.4f}).")
        pending.append((call, got, parameter, alpha, update))
    for call, got, parameter, alpha, update in pending:  # values first, then gradients
        if got.grad_fn is None or not got.requires_grad:
            raise Failed(f"Not yet: {call} has the right values, but no gradient reaches alpha "
                         f"(.item(), float() or math.tanh cut it). Use torch.tanh(alpha) so that "
                         f"the gate can learn.")
        got.sum().backward()
        expected_grad = (1 - math.tanh(alpha) ** 2) * update.sum().item()
        if parameter.grad is None or not math.isclose(parameter.grad.item(), expected_grad,
                                                      rel_tol=1e-4, abs_tol=1e-4):
            raise Failed(f"Not yet: {call}: d sum(output) / d alpha is "
                         f"{None if parameter.grad is None else round(parameter.grad.item(), 4)}, "
                         f"expected (1 - tanh^2(alpha)) * sum(update) = {expected_grad:.4f}.")
    return verdict(True, f"Well done! gated_residual is exactly x at alpha = 0, lets "
                         f"tanh(1) = {math.tanh(1):.4f} of the update through at alpha = 1, "
                         f"subtracts it for negative alpha, and passes gradients to alpha.")
