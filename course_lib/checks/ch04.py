"""Checkers for chapter 04: the symmetric InfoNCE loss (part 04a) and recall@k (part 04b).

Each checker calls the learner's function on similarity matrices it controls (the worked
example, random matrices where the two directions differ, one pair, ties, logits of 100 that
overflow a naive ``exp``, k larger than N), compares with :mod:`course_lib.contrastive`,
recognises the typical mistakes (one direction only, a forgotten temperature, a softmax over
the wrong axis, recall that counts any match instead of the diagonal, ...) and prints
"Well done!" or a precise hint. It never raises.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from course_lib.checks._common import (
    CheckResult,
    Failed,
    as_number,
    call_learner,
    close,
    guarded,
    learner_tensor,
    verdict,
)
from course_lib.contrastive import WORKED_SIMILARITY, contrastive_loss, recall_at_k

_LIBRARY_NAMES = {"contrastive_loss", "clip_loss", "contrastive_breakdown", "recall_at_k",
                  "temperature_curve"}


def _uses_library(function: Any) -> list[str]:
    code = getattr(function, "__code__", None)
    return sorted(_LIBRARY_NAMES & set(code.co_names)) if code is not None else []


def _random_similarity(n: int, seed: int, dtype: torch.dtype = torch.float64,
                       noise: float = 1.2) -> torch.Tensor:
    """(n, n) cosine similarities of random pairs, their partners a little more similar."""
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(n, 6, generator=generator, dtype=torch.float64)
    b = a + noise * torch.randn(n, 6, generator=generator, dtype=torch.float64)
    a, b = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    return (a @ b.T).to(dtype)


# ----------------------------------------------------------------------------- exercise A
def _loss_cases() -> list[tuple[str, torch.Tensor, float | torch.Tensor]]:
    """(description, similarity (N, N), temperature) on which the loss is checked."""
    near = _random_similarity(6, 3, torch.float32)
    near.diagonal().fill_(1.0)  # logits up to 100 at tau = 0.01: a naive exp overflows
    return [
        ("the worked example (tau 0.1)", torch.tensor(WORKED_SIMILARITY, dtype=torch.float64),
         0.1),
        ("a random 5 x 5 matrix (tau 0.07 as a tensor)", _random_similarity(5, 0),
         torch.tensor(0.07, dtype=torch.float64)),
        ("a random 7 x 7 matrix (tau 0.5)", _random_similarity(7, 1), 0.5),
        ("one pair (N = 1)", torch.tensor([[0.3]], dtype=torch.float64), 0.5),
        ("a 4 x 4 matrix of ties (all 0.5)", torch.full((4, 4), 0.5, dtype=torch.float64), 0.2),
        ("a float32 6 x 6 matrix at tau 0.01 (logits up to 100)", near, 0.01),
    ]


def _whole_matrix(similarity: torch.Tensor, temperature: float) -> float:
    log_p = (similarity.double() / float(temperature)).flatten().log_softmax(0)
    return -log_p.view_as(similarity).diagonal().mean().item()


def _loss_variants(similarity: torch.Tensor, temperature: float | torch.Tensor
                   ) -> dict[str, float]:
    """What typical wrong formulas give, each named by the hint that fixes it."""
    s, tau, n = similarity.double(), float(temperature), similarity.shape[0]
    rows = contrastive_loss(s, tau, symmetric=False).item()
    columns = contrastive_loss(s.T, tau, symmetric=False).item()
    both = contrastive_loss(s, tau).item()
    return {
        "rows only": rows,
        "columns only": columns,
        "temperature forgotten": contrastive_loss(s, 1.0).item(),
        "multiplied by the temperature": contrastive_loss(s, 1 / tau).item(),
        "softmax over the whole matrix": _whole_matrix(s, tau),
        "sum of the two directions": rows + columns,
        "sum over pairs": both * n,
    }


_LOSS_HINTS = {
    "rows only": (
        "that is the image->text direction only (softmax along each row). CLIP averages it "
        "with the text->image direction: the same cross-entropy on the columns, i.e. on "
        "logits.T, then (rows + columns) / 2."),
    "columns only": (
        "that is the text->image direction only (softmax down each column). Average it with "
        "the image->text direction (softmax along each row): (rows + columns) / 2."),
    "temperature forgotten": (
        "you used the similarities as logits: divide them by the temperature first, "
        "logits = similarity / temperature."),
    "multiplied by the temperature": (
        "divide by the temperature, do not multiply: tau = 0.1 makes the logits ten times "
        "larger."),
    "softmax over the whole matrix": (
        "you took one softmax over all N x N entries. Each row is its own N-way question "
        "(softmax over dim=1), and each column too (softmax over dim=0)."),
    "sum of the two directions": (
        "you added the two directions; CLIP's loss is their mean, (rows + columns) / 2."),
    "sum over pairs": (
        "you summed over the N pairs; each direction is the MEAN of the N cross-entropies."),
}


def _loss_hint(error: Exception) -> str:
    if isinstance(error, (TypeError, AttributeError)) and "float" in str(error):
        return ("The temperature may be a Python float or a 0-d tensor (1 / logit_scale()): "
                "divide the similarities by it directly.")
    return "Read the error, fix the line, and run the check again."


def _as_loss(value: Any, who: str, overflow: bool) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise Failed(f"Not yet: {who} returned {type(value).__name__} {value!r:.60}; return "
                     f"the loss as a torch tensor (no .item(), no .numpy()) so that it can be "
                     f"differentiated for training.")
    value = learner_tensor(value, who, "")  # meta, complex and half tensors
    if value.numel() != 1:
        raise Failed(f"Not yet: {who} returned a tensor of shape {tuple(value.shape)}; the "
                     f"loss is one number: take the mean over the N pairs in each direction.")
    if not torch.isfinite(value).all():
        extra = (" A naive exp(logits) overflows at logit 100 (float32 stops at about 3e38): "
                 "use log_softmax or F.cross_entropy, which subtract the largest logit first."
                 if overflow else " Look for a log of 0 or a division by zero.")
        raise Failed(f"Not yet: {who} is {value.item()}.{extra}")
    return value


@guarded
def check_info_nce(my_info_nce: Callable[[torch.Tensor, Any], torch.Tensor]) -> CheckResult:
    """Exercise A: ``my_info_nce(similarity, temperature) -> scalar tensor``.

    CLIP's symmetric InfoNCE loss of an (N, N) similarity matrix whose pairs are on the
    diagonal, the mean of the row (A->B) and column (B->A) cross-entropies at temperature tau.
    Compared with :func:`course_lib.contrastive.contrastive_loss` on six matrices, the
    gradient too.
    """
    answers, expected, wrong = {}, {}, []
    for index, (name, similarity, temperature) in enumerate(_loss_cases()):
        got = call_learner(my_info_nce, similarity.clone(), temperature, exercise="check_info_nce",
                           hint=_loss_hint)
        got = _as_loss(got, f"my_info_nce on {name}", overflow=index == 5)
        answers[index] = got.detach().double().item()
        expected[index] = contrastive_loss(similarity.double(), float(temperature)).item()
        if not close(answers[index], expected[index], atol=1e-6, rtol=1e-4):
            wrong.append(index)
    cases = _loss_cases()
    if wrong:
        variants = {i: _loss_variants(*cases[i][1:]) for i in wrong}
        hint = next((text for mistake, text in _LOSS_HINTS.items()
                     if all(close(answers[i], variants[i][mistake], atol=1e-6, rtol=1e-4)
                            for i in wrong)), None)
        first = wrong[0]
        hint = hint or ("logits = similarity / temperature; labels = arange(N); the mean of "
                        "F.cross_entropy(logits, labels) and F.cross_entropy(logits.T, labels).")
        raise Failed(f"Not yet: on {cases[first][0]} my_info_nce returned {answers[first]:.6g}, "
                     f"expected {expected[first]:.6g} ({len(wrong)} of {len(cases)} matrices "
                     f"wrong). Hint: {hint}")
    similarity = _random_similarity(5, 0).requires_grad_(True)
    got = call_learner(my_info_nce, similarity, 0.07, exercise="check_info_nce", hint=_loss_hint)
    if not isinstance(got, torch.Tensor) or not got.requires_grad:
        raise Failed("Not yet: the value is right, but the loss is cut off from the "
                     "similarities (no gradient): avoid .item(), .detach(), .numpy() and "
                     "torch.tensor(...) on intermediate results.")
    (gradient,) = torch.autograd.grad(got.sum(), similarity)
    reference = _random_similarity(5, 0).requires_grad_(True)
    (expected_gradient,) = torch.autograd.grad(contrastive_loss(reference, 0.07), reference)
    if not close(gradient, expected_gradient, atol=1e-6, rtol=1e-4):
        raise Failed("Not yet: the value is right, but its gradient is not: part of the "
                     "computation is detached from the similarities.")
    library = _uses_library(my_info_nce)
    if library:
        raise Failed(f"Not yet: the numbers are right, but my_info_nce calls "
                     f"{', '.join(library)} from course_lib.contrastive. Write it yourself with "
                     f"log_softmax or F.cross_entropy.")
    return verdict(True, f"Well done! my_info_nce matches on all {len(cases)} matrices and its "
                         f"gradient too: {expected[0]:.7f} on the worked example, 0 for one pair, "
                         f"log 4 = {expected[4]:.4f} for four ties, finite at logits of 100.")


# ----------------------------------------------------------------------------- exercise B
def _recall_cases() -> list[tuple[str, torch.Tensor, int]]:
    """(description, similarity (N, N), k) on which recall@k is checked."""
    anti = torch.eye(5, dtype=torch.float64).flip(1) + 0.1 * _random_similarity(5, 4)
    anti.diagonal().fill_(-1.0)  # every partner is ranked last
    tied = torch.tensor([[0.9, 0.9, 0.1], [0.2, 0.8, 0.3], [0.5, 0.5, 0.5]],
                        dtype=torch.float64)
    return [
        ("the worked example, k = 1", torch.tensor(WORKED_SIMILARITY, dtype=torch.float64), 1),
        ("a random 8 x 8 matrix, k = 1", _random_similarity(8, 5, noise=2.5), 1),
        ("a random 8 x 8 matrix, k = 3", _random_similarity(8, 5, noise=2.5), 3),
        ("a random 12 x 12 matrix, k = 2", _random_similarity(12, 6, noise=2.5), 2),
        ("partners ranked last, k = 1", anti, 1),
        ("one pair (N = 1), k = 1", torch.tensor([[0.2]], dtype=torch.float64), 1),
        ("a 4 x 4 matrix with k = 10 > N", _random_similarity(4, 7), 10),
        ("ties with the partner, k = 1", tied, 1),
    ]


def _recall_bounds(similarity: torch.Tensor, k: int) -> tuple[float, float]:
    """Recall@k of the rows when ties go against the partner, and when they go its way."""
    partner = similarity.diagonal()[:, None]
    above = (similarity > partner).sum(dim=1)              # strictly more similar items
    tied = (similarity == partner).sum(dim=1) - 1          # other items as similar
    return ((above + tied) < k).double().mean().item(), (above < k).double().mean().item()


def _recall_variants(similarity: torch.Tensor, k: int) -> dict[str, float]:
    n = similarity.shape[0]
    k_in = min(k, n)
    reference = recall_at_k(similarity, k_in)
    return {
        "columns": reference.b_to_a,
        "any match": 1.0,
        "mean over the k slots": reference.a_to_b / k_in,
        "smallest": recall_at_k(-similarity, k_in).a_to_b,
        "count": reference.a_to_b * n,
        "one too many": recall_at_k(similarity, min(k_in + 1, n)).a_to_b,
        "percentage": 100 * reference.a_to_b,
    }


_RECALL_HINTS = {
    "columns": (
        "you looked down the columns (clip->image). Here each ROW i is a query: is column i "
        "among the k largest entries of row i? (topk along dim=1)."),
    "any match": (
        "you count a row as a hit whenever its top k holds any match. Only the row's own "
        "partner counts: row i is a hit when column i is among its k largest entries."),
    "mean over the k slots": (
        "you averaged over all N x k slots of the top-k table. First ask, per row, whether "
        "any of its k slots is the partner (.any(dim=1)), then average over the N rows."),
    "smallest": (
        "you took the k SMALLEST similarities; the most similar items are the largest "
        "(topk picks the largest by default; argsort sorts ascending)."),
    "count": "you returned the number of hits; return the fraction, hits / N.",
    "one too many": "you looked at k + 1 items; recall@k looks at the k most similar only.",
    "percentage": ("you returned a percentage; return the fraction of rows, between 0 and 1 "
                   "(hits / N, not 100 * hits / N)."),
}


def _recall_hint(error: Exception) -> str:
    if isinstance(error, RuntimeError) and ("out of range" in str(error) or "k" in str(error)):
        return ("k may be larger than N: then all N items are in the top k and every row is a "
                "hit. Use min(k, N).")
    return "Read the error, fix the line, and run the check again."


@guarded
def check_recall_at_k(my_recall_at_k: Callable[[torch.Tensor, int], float]) -> CheckResult:
    """Exercise B: ``my_recall_at_k(similarity, k) -> float``, the A->B (row) direction.

    The fraction of rows i whose partner, column i, is among the k largest entries of row i
    (all of them when k >= N). Compared with :func:`course_lib.contrastive.recall_at_k`; where
    the partner ties with another item at the cut, either way of breaking the tie passes.
    """
    cases = _recall_cases()
    answers, wrong = {}, []
    for index, (name, similarity, k) in enumerate(cases):
        got = call_learner(my_recall_at_k, similarity.clone(), k, exercise="check_recall_at_k",
                           hint=_recall_hint)
        if (hasattr(got, "shape") and hasattr(got, "__len__")
                and math.prod(got.shape) == similarity.shape[0] > 1):
            raise Failed(f"Not yet: on {name} my_recall_at_k returned an array of shape "
                         f"{tuple(got.shape)}, one value per row; return their mean (a float).")
        answers[index] = float(as_number(got, f"my_recall_at_k on {name}"))
        low, high = _recall_bounds(similarity, k)
        if name.startswith("ties"):
            ok = low - 1e-9 <= answers[index] <= high + 1e-9
        else:
            library = recall_at_k(similarity, min(k, similarity.shape[0])).a_to_b
            if not math.isclose(library, low, abs_tol=1e-6):  # pragma: no cover - a guard
                raise Failed("Not yet: the reference disagrees with itself here.")
            ok = math.isclose(answers[index], low, abs_tol=1e-6)
        if not ok:
            wrong.append(index)
    if wrong:
        variants = {i: _recall_variants(cases[i][1], cases[i][2]) for i in wrong}
        hint = next((text for mistake, text in _RECALL_HINTS.items()
                     if all(math.isclose(answers[i], variants[i][mistake], abs_tol=1e-6)
                            for i in wrong)), None)
        outside = [i for i in wrong if not 0.0 <= answers[i] <= 1.0]
        if hint is None and outside:
            hint = (f"a recall is a fraction of the rows, between 0 and 1, but "
                    f"{len(outside)} answer(s) lie outside [0, 1] (e.g. {answers[outside[0]]:g}).")
        first = wrong[0]
        low, high = _recall_bounds(cases[first][1], cases[first][2])
        want = f"{low:.4g}" if low == high else f"between {low:.4g} and {high:.4g} (a tie)"
        hint = hint or ("for each row i, take the indices of its k largest entries "
                        "(similarity.topk(min(k, N), dim=1)), ask whether i is among them, and "
                        "average over the rows.")
        raise Failed(f"Not yet: on {cases[first][0]} my_recall_at_k returned "
                     f"{answers[first]:.4g}, expected {want} ({len(wrong)} of {len(cases)} "
                     f"cases wrong). Hint: {hint}")
    library = _uses_library(my_recall_at_k)
    if library:
        raise Failed(f"Not yet: the numbers are right, but my_recall_at_k calls "
                     f"{', '.join(library)} from course_lib.contrastive. Write it with topk.")
    return verdict(True, f"Well done! my_recall_at_k matches on all {len(cases)} cases: "
                         f"{answers[1]:.3f} at k = 1 and {answers[2]:.3f} at k = 3 on the random "
                         f"8 x 8 matrix, 0 when partners rank last, 1 when k > N.")
