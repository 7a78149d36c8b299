"""Chapter 04's checkers on right answers, stubs, crashes, wrong types, NaN, numpy and mistakes.

The expected numbers come from hand formulas written here (a softmax built from exp and a
log-sum-exp, recall counted by sorting), from F.cross_entropy and from the worked example's
printed values, never from the checker itself.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from checker_verdicts import stub, verdict_of

from course_lib.checks import ch04
from course_lib.contrastive import WORKED_SIMILARITY, contrastive_loss


# ----------------------------------------------------------------------------- exercise A
def info_nce_right(similarity, temperature):
    logits = similarity / temperature
    labels = torch.arange(len(similarity))
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def info_nce_by_hand(similarity, temperature):
    """Log-sum-exp written out: stable because the largest logit is subtracted first."""
    logits = similarity / temperature
    top_rows = logits.max(dim=1, keepdim=True).values
    top_columns = logits.max(dim=0, keepdim=True).values
    log_rows = logits - top_rows - (logits - top_rows).exp().sum(1, keepdim=True).log()
    log_columns = logits - top_columns - (logits - top_columns).exp().sum(0, keepdim=True).log()
    return -(log_rows.diagonal().mean() + log_columns.diagonal().mean()) / 2


def test_the_worked_example_by_hand():
    # row 1: -log(e^9 / (e^9 + e^2 + e^1)); the chapter prints means 0.0051221 and 0.0051232
    s = torch.tensor(WORKED_SIMILARITY, dtype=torch.float64)
    assert -math.log(math.exp(9) / (math.exp(9) + math.exp(2) + math.exp(1))) == pytest.approx(
        0.00125, abs=1e-5)
    assert info_nce_by_hand(s, 0.1).item() == pytest.approx((0.0051221 + 0.0051232) / 2,
                                                            abs=1e-7)
    assert info_nce_right(s, 0.1).item() == pytest.approx(info_nce_by_hand(s, 0.1).item())
    assert info_nce_by_hand(torch.full((4, 4), 0.5), 0.2).item() == pytest.approx(math.log(4))


@pytest.mark.parametrize("answer", [
    info_nce_right, info_nce_by_hand,
    lambda s, t: info_nce_right(s, t).reshape(1),  # a one-element tensor is one number
    lambda s, t: info_nce_right(s.float(), t),      # computed in float32
])
def test_info_nce_right_answers_pass(answer, capsys):
    verdict_of(ch04.check_info_nce(answer), capsys, True, "Well done!", "0.0051227",
               "log 4 = 1.3863")


def rows_only(similarity, temperature):
    logits = similarity / temperature
    return F.cross_entropy(logits, torch.arange(len(similarity)))


def columns_only(similarity, temperature):
    return rows_only(similarity.T, temperature)


def no_temperature(similarity, temperature):
    return info_nce_right(similarity, 1.0)


def times_temperature(similarity, temperature):
    return info_nce_right(similarity * temperature, 1.0)


def whole_matrix_softmax(similarity, temperature):
    logits = similarity / temperature
    return -logits.flatten().log_softmax(0).view_as(logits).diagonal().mean()


def same_axis_twice(similarity, temperature):
    """Softmax over the wrong axis: the 'column' term reuses the rows."""
    logits = similarity / temperature
    labels = torch.arange(len(similarity))
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits, labels)) / 2


def summed_directions(similarity, temperature):
    return 2 * info_nce_right(similarity, temperature)


def summed_pairs(similarity, temperature):
    return len(similarity) * info_nce_right(similarity, temperature)


def naive_exp(similarity, temperature):
    e = (similarity / temperature).exp()
    rows = -(e.diagonal() / e.sum(1)).log().mean()
    columns = -(e.diagonal() / e.sum(0)).log().mean()
    return (rows + columns) / 2


def detached(similarity, temperature):
    return torch.tensor(info_nce_right(similarity, temperature).item())


def calls_the_library(similarity, temperature):
    return contrastive_loss(similarity, temperature)


@pytest.mark.parametrize("answer, phrases", [
    (stub, ["Not implemented yet", "NotImplementedError"]),
    (lambda s, t: 1 / 0, ["ZeroDivisionError", "line"]),
    (lambda s, t: info_nce_right(s, t).item(), ["returned float", "torch tensor"]),
    (lambda s, t: info_nce_right(s, t).detach().numpy(), ["returned ndarray", "no .numpy()"]),
    (lambda s, t: torch.ones(len(s)), ["shape", "mean over the N pairs"]),
    (lambda s, t: torch.tensor(float("nan")), ["nan"]),
    (rows_only, ["image->text direction only", "logits.T"]),
    (same_axis_twice, ["image->text direction only"]),
    (columns_only, ["text->image direction only"]),
    (no_temperature, ["divide them by the temperature"]),
    (times_temperature, ["do not multiply"]),
    (whole_matrix_softmax, ["one softmax over all N x N entries"]),
    (summed_directions, ["their mean"]),
    (summed_pairs, ["summed over the N pairs"]),
    (naive_exp, ["overflows", "log_softmax"]),
    (detached, ["no gradient"]),
    (calls_the_library, ["calls contrastive_loss"]),
    ("0.005", ["expects a function, but got str"]),
])
def test_info_nce_wrong_answers_get_a_precise_hint(answer, phrases, capsys):
    verdict_of(ch04.check_info_nce(answer), capsys, False, *phrases)


def test_info_nce_stub_says_not_implemented_yet(capsys):
    result = ch04.check_info_nce(stub)
    assert result.status == "not-implemented"
    capsys.readouterr()


# ----------------------------------------------------------------------------- exercise B
def recall_right(similarity, k):
    top = similarity.topk(min(k, len(similarity)), dim=1).indices
    return (top == torch.arange(len(similarity))[:, None]).any(dim=1).float().mean().item()


def recall_by_sorting(similarity, k):
    """Rank of each partner by counting strictly larger entries, in plain Python."""
    rows = similarity.tolist()
    hits = sum(sum(v > row[i] for v in row) < k for i, row in enumerate(rows))
    return hits / len(rows)


def test_recall_hand_numbers():
    s = torch.tensor([[0.9, 0.2, 0.1], [0.3, 0.8, 0.2], [0.1, 0.1, 0.7]])
    assert recall_by_sorting(s, 1) == 1.0 and recall_right(s, 5) == 1.0
    swapped = torch.tensor([[0.1, 0.9], [0.2, 0.8]])  # row 1 ranks its partner first, row 0 not
    assert recall_by_sorting(swapped, 1) == 0.5 and recall_right(swapped, 1) == 0.5


@pytest.mark.parametrize("answer", [
    recall_right, recall_by_sorting,
    lambda s, k: np.float64(recall_right(s, k)),    # a numpy number
    lambda s, k: torch.tensor(recall_right(s, k)),  # a 0-d tensor
])
def test_recall_right_answers_pass(answer, capsys):
    verdict_of(ch04.check_recall_at_k(answer), capsys, True, "Well done!", "1 when k > N")


def recall_columns(similarity, k):
    return recall_right(similarity.T, k)


def recall_any_match(similarity, k):
    """Counts a row when its top k holds any partner index at all (always true)."""
    top = similarity.topk(min(k, len(similarity)), dim=1).indices
    return float(torch.isin(top, torch.arange(len(similarity))).any(dim=1).float().mean())


def recall_over_slots(similarity, k):
    top = similarity.topk(min(k, len(similarity)), dim=1).indices
    return (top == torch.arange(len(similarity))[:, None]).float().mean().item()


def recall_smallest(similarity, k):
    return recall_right(-similarity, k)


def recall_count(similarity, k):
    return recall_right(similarity, k) * len(similarity)


def recall_no_min(similarity, k):
    top = similarity.topk(k, dim=1).indices
    return (top == torch.arange(len(similarity))[:, None]).any(dim=1).float().mean().item()


@pytest.mark.parametrize("answer, phrases", [
    (stub, ["Not implemented yet"]),
    (lambda s, k: [][0], ["IndexError", "line"]),
    (lambda s, k: "1.0", ["should be a number, got str"]),
    (lambda s, k: np.ones(len(s)), ["one value per row", "float"]),
    (lambda s, k: np.ones((2, 2)), ["should be a number, got ndarray"]),
    (lambda s, k: torch.ones(len(s)), ["one value per row"]),
    (lambda s, k: math.nan, ["is nan"]),
    (recall_columns, ["down the columns"]),
    (recall_any_match, ["any match", "own partner"]),
    (recall_over_slots, ["N x k slots"]),
    (recall_smallest, ["SMALLEST"]),
    (recall_count, ["number of hits"]),
    (recall_no_min, ["RuntimeError", "min(k, N)"]),
    (lambda s, k: 0.5, ["expected"]),
])
def test_recall_wrong_answers_get_a_precise_hint(answer, phrases, capsys):
    verdict_of(ch04.check_recall_at_k(answer), capsys, False, *phrases)


def test_recall_accepts_either_tie_order_but_nothing_outside(capsys):
    pessimistic = recall_right  # topk of torch on ties: whichever order it gives
    verdict_of(ch04.check_recall_at_k(pessimistic), capsys, True)

    def optimistic(similarity, k):
        return recall_by_sorting(similarity, k)  # ties count as hits

    verdict_of(ch04.check_recall_at_k(optimistic), capsys, True)
