"""Greedy decoding, shared by every model of this package (LLaVA, Flamingo, the Thinker).

Each model says how to score the next token of a prompt that has grown by the tokens
generated so far; the loop itself (append the most likely token, keep ``eos_id`` once a row
has produced it, stop when every row has) lives here once.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from course_lib.architectures._checks import _check_id, _check_new_tokens

__all__: list[str] = []  # private module: the models' ``generate`` methods are the API


def greedy_decode(next_token_logits: Callable[[Tensor], Tensor], input_ids: Tensor,
                  max_new_tokens: int, eos_id: int | None, vocab_size: int) -> Tensor:
    """Append the most likely next token, one at a time, up to ``max_new_tokens``.

    Args:
        next_token_logits: ids (B, T + g) -> logits (B, V) of the token after the last one.
        input_ids: the prompt (B, T), already checked by the caller.
        eos_id: rows that produced it keep producing it; decoding stops once every row has.

    Shape: input_ids (B, T) -> generated ids (B, G) with G <= max_new_tokens.
    """
    max_new_tokens = _check_new_tokens(max_new_tokens)
    eos_id = _check_id("eos_id", eos_id, vocab_size, optional=True)
    generated = input_ids[:, :0]
    finished = torch.zeros(len(input_ids), dtype=torch.bool, device=input_ids.device)
    for _ in range(max_new_tokens):
        next_ids = next_token_logits(torch.cat([input_ids, generated], dim=1)).argmax(dim=-1)
        if eos_id is not None:
            next_ids = next_ids.masked_fill(finished, eos_id)
            finished = finished | (next_ids == eos_id)
        generated = torch.cat([generated, next_ids[:, None]], dim=1)
        if eos_id is not None and bool(finished.all()):
            break
    return generated
