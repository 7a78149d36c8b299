"""Tokenizer box: type text and see the BPE tokens, their ids and how many there are.

The tokens come from :func:`course_lib.text.token_table`; this module only renders them
(spaces shown as a middle dot, bytes that are only part of a character as escapes).
"""

from __future__ import annotations

import html

import ipywidgets

from course_lib._validation import ArgumentTypeError, check_int, check_text, describe
from course_lib.text import SAMPLE_TEXT, BPETokenizer, token_table
from course_lib.widgets._checks import check_tokenizer
from course_lib.widgets._picture import pictured

CHIP_COLOURS = ("#d6eaf8", "#d5f5e3", "#fdebd0", "#f5eef8", "#fadbd8")
DEFAULT_TEXT = "a handwritten seven, said with a cough 😀"


def default_tokenizer(vocab_size: int = 384) -> BPETokenizer:
    """A BPE trained on the course's digit captions plus a short paragraph of prose."""
    vocab_size = check_int("vocab_size", vocab_size, minimum=256)
    from course_lib.data import load_digits_av

    captions = load_digits_av("train", seed=0).captions
    return BPETokenizer().train(captions + [SAMPLE_TEXT], vocab_size=vocab_size)


def tokens_html(table: list[tuple[int, str]]) -> str:
    """Each token as a coloured chip with its text above and its id below."""
    table = _check_table(table)
    chips = []
    for position, (token_id, text) in enumerate(table):
        shown = html.escape(text.replace(" ", "\u00b7"))
        colour = CHIP_COLOURS[position % len(CHIP_COLOURS)]
        chips.append(
            f"<span style='display:inline-block;margin:2px;padding:2px 4px;background:{colour};"
            f"border-radius:4px;text-align:center;font-family:monospace'>"
            f"<span style='white-space:pre'>{shown}</span><br>"
            f"<small>{token_id}</small></span>"
        )
    return "".join(chips)


def _check_table(table: object) -> list[tuple[int, str]]:
    """``token_table``'s output: a list of (id, text) pairs."""
    if not isinstance(table, (list, tuple)) or not all(
            isinstance(row, (list, tuple)) and len(row) == 2 and isinstance(row[1], str)
            and isinstance(row[0], int) and not isinstance(row[0], bool) for row in table):
        raise ArgumentTypeError(f"table must be a list of (token id, text) pairs, as "
                                f"course_lib.text.token_table returns, got {describe(table)}")
    return list(table)


def count_text(text: str, table: list[tuple[int, str]]) -> str:
    """The read-out line: tokens, characters and UTF-8 bytes of ``text``."""
    text = check_text("text", text)
    table = _check_table(table)
    return (f"<b>{len(table)} tokens</b> for {len(text)} characters "
            f"({len(text.encode('utf-8'))} UTF-8 bytes)")


@pictured
def tokenizer_box(tokenizer: BPETokenizer | None = None,
                  text: str = DEFAULT_TEXT) -> ipywidgets.VBox:
    """A text box; every keystroke re-tokenises and redraws the tokens and the count.

    Args:
        tokenizer: a trained :class:`BPETokenizer` (default: :func:`default_tokenizer`).
        text: the starting text.

    Returns:
        The root widget; ``.text``, ``.count`` and ``.tokens`` (HTML widgets) are attached.
    """
    text = check_text("text", text)
    tokenizer = default_tokenizer() if check_tokenizer(tokenizer) is None else tokenizer
    box = ipywidgets.Text(value=text, description="text", continuous_update=True,
                          layout=ipywidgets.Layout(width="90%"))
    count = ipywidgets.HTML()
    tokens = ipywidgets.HTML()

    def update(_change=None) -> None:
        table = token_table(tokenizer, box.value)
        count.value = count_text(box.value, table) + f" &middot; vocabulary {tokenizer.vocab_size}"
        tokens.value = tokens_html(table)

    box.observe(update, names="value")
    update()
    root = ipywidgets.VBox([box, count, tokens])
    root.text, root.count, root.tokens = box, count, tokens
    return root


def _benchmark() -> ipywidgets.VBox:
    small = BPETokenizer().train([SAMPLE_TEXT, DEFAULT_TEXT], vocab_size=300)
    return tokenizer_box(small)


BENCHMARK = _benchmark
