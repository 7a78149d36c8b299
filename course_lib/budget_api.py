"""What hosted APIs bill for an image or a clip, by their documented rules.

Open models' processors are code you can run and check (:mod:`course_lib.budget_processors`);
a hosted API's billing is a rule on a documentation page, and it can change at any time. Each
rule below cites the page and the date it was read. ``tests/test_budget.py`` checks them
against the pages' own worked examples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from course_lib._validation import check_choice
from course_lib.budget_counts import TokenCount, _check_seconds
from course_lib.budget_processors import _check_image

RULES_READ_ON = "2026-12-01"
OPENAI_VISION_PAGE = "https://platform.openai.com/docs/guides/vision (Calculating costs)"
CLAUDE_VISION_PAGE = ("https://docs.claude.com/en/docs/build-with-claude/vision"
                      " (Evaluate image size)")
GEMINI_TOKENS_PAGE = "https://ai.google.dev/gemini-api/docs/tokens (Multimodal tokens)"


def _scale_to_fit(height: int, width: int, limit_height: float, limit_width: float
                  ) -> tuple[int, int]:
    """Shrink (never enlarge), keeping the aspect ratio, to fit inside the limits."""
    scale = min(limit_height / height, limit_width / width, 1.0)
    return max(1, math.floor(height * scale)), max(1, math.floor(width * scale))


def gpt4o_image_tokens(height: int, width: int, detail: str = "high") -> int:
    """gpt-4o: 85 tokens at low detail; at high detail 85 + 170 per 512-px tile.

    High detail: the image is scaled to fit in 2048 x 2048, then so that its shortest side is
    768 px, then covered by 512 x 512 tiles. The guide's examples only shrink; this rule
    never enlarges a smaller image (500 x 500 stays one tile). Worked
    examples on the page: 1024 x 1024 -> 765; 2048 x 4096 -> 1105; any size at low -> 85.

    Raises:
        ValueError: naming the argument: a size that is not an integer from 1 to 2**20, or
            ``detail`` not ``"low"`` / ``"high"``.
    """
    height, width = _check_image(height, width)
    check_choice("detail", detail, ("low", "high"))
    if detail == "low":
        return 85
    height, width = _scale_to_fit(height, width, 2048, 2048)
    shortest = min(height, width)
    height, width = _scale_to_fit(height, width, height * 768 / shortest, width * 768 / shortest)
    return 85 + 170 * math.ceil(height / 512) * math.ceil(width / 512)


def claude_image_tokens(height: int, width: int) -> int:
    """Claude: about width x height / 750 tokens, after its downscaling.

    An image whose long edge is over 1568 px, or that would be over about 1600 tokens, is
    first scaled down (aspect kept) until it is within both limits (1600 x 750 = 1.2 million
    pixels). The page's table: 200 x 200 -> ~54, 1000 x 1000 -> ~1334, 1092 x 1092 -> ~1590
    (rounded up here). Newer models may accept larger images: check the page.
    """
    height, width = _check_image(height, width)
    height, width = _scale_to_fit(height, width, 1568, 1568)
    if height * width > 1600 * 750:
        scale = math.sqrt(1600 * 750 / (height * width))
        height, width = math.floor(height * scale), math.floor(width * scale)
    return math.ceil(height * width / 750)


def gemini_image_tokens(height: int, width: int) -> int:
    """Gemini (2.0 and later): 258 tokens if both sides are <= 384 px, else 258 per tile.

    Larger images are "cropped and scaled as needed into tiles of 768 x 768 pixels, each
    counted as 258 tokens"; the page does not give the tiling formula, so this counts
    ceil(W / 768) x ceil(H / 768) tiles (an assumption: use the API's count_tokens to check).
    """
    height, width = _check_image(height, width)
    if height <= 384 and width <= 384:
        return 258
    return 258 * math.ceil(height / 768) * math.ceil(width / 768)


def gemini_audio_tokens(seconds: float) -> int:
    """Gemini: 32 tokens per second of audio (1 minute -> 1920), rounded up here."""
    return math.ceil(32 * _check_seconds(seconds) - 1e-9)


@dataclass(frozen=True)
class ApiImages:
    """An API's image rule as a preset's image front end (everything goes to the context)."""

    api: str
    detail: str = "high"

    def __post_init__(self) -> None:
        check_choice("api", self.api, ("gpt-4o", "claude", "gemini"))
        check_choice("detail", self.detail, ("low", "high"))

    def tokens(self, height: int, width: int) -> TokenCount:
        """The API's documented count for one ``height x width`` image (all context)."""
        if self.api == "gpt-4o":
            return TokenCount(context=gpt4o_image_tokens(height, width, self.detail))
        if self.api == "claude":
            return TokenCount(context=claude_image_tokens(height, width))
        if self.api == "gemini":
            return TokenCount(context=gemini_image_tokens(height, width))
        raise ValueError(f"api must be 'gpt-4o', 'claude' or 'gemini', got {self.api!r}")

    def describe(self, height: int, width: int) -> str:
        """One line naming the rule and when its page was read."""
        _check_image(height, width)
        return f"{self.api} billing rule (documentation read {RULES_READ_ON})"


@dataclass(frozen=True)
class ApiAudio:
    """Gemini's audio rule (32 tokens per second) as a preset's audio front end."""

    def tokens(self, seconds: float) -> TokenCount:
        """32 context tokens per second of the clip."""
        return TokenCount(context=gemini_audio_tokens(seconds))

    def describe(self, seconds: float) -> str:
        """One line: the clip's length times Gemini's rate."""
        seconds = _check_seconds(seconds)
        return f"{seconds:g} s x 32 tokens/s (Gemini's documented rate)"
