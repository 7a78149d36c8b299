"""Chapter 07 in the browser: every slider of the token-budget calculator re-counts the budget.

The page's own numbers are checked against each other and against hand formulas: used =
images x tokens per image + audio tokens + prompt tokens; left = context - used; centre-padded
STFT frames = 1 + samples // hop; three stride-2 convolutions give ceil(ceil(ceil(F/2)/2)/2);
Whisper's memory is 1500 per started 30 s window, beside a 448-position context.
"""

import math
import re
from dataclasses import dataclass

from lab_driver import (
    changed,
    drag,
    equals,
    html_text,
    plotly_titles,
    plotly_traces,
    press,
    readout,
    slider,
    trace_paths,
    wait_for,
)

CHAPTER = "07_token_budget.ipynb"
SAMPLE_RATE = 16000
SUMMARY = re.compile(r"Tokens left for generation: (\d+) \(used (\d+) of (\d+)\)")
MEMORY = re.compile(r"cross-attended memory: (\d+) positions")
IMAGES = re.compile(r"images: (\d+) x (\d+) tokens.*?(\d+) x (\d+) px")
AUDIO = re.compile(r"audio: (\d+) tokens|audio: [\d.]+ s -> \d+ STFT frames[^>]*-> (\d+) tokens")
FRAMES = re.compile(r"([\d.]+) s -> (\d+) STFT frames -> (\d+) tokens")
PROMPT = re.compile(r"prompt: (\d+) tokens")


@dataclass(frozen=True)
class Shown:
    left: int
    used: int
    context: int
    memory: int
    images: int
    per_image: int
    image_height: int
    audio_seconds: float
    frames: int
    audio_tokens: int
    prompt_tokens: int
    title: str


def read(area) -> Shown:
    text = "\n".join(html_text(area))
    summary, memory, prompt = SUMMARY.search(text), MEMORY.search(text), PROMPT.search(text)
    assert summary and memory and prompt, f"unexpected calculator read-out {text!r}"
    images, audio, frames = IMAGES.search(text), AUDIO.search(text), FRAMES.search(text)
    if images is None:
        assert "images: none" in text, text
    if audio is None:
        assert "audio: none" in text, text
    titles = plotly_titles(area)
    return Shown(*map(int, summary.groups()), int(memory.group(1)),
                 int(images.group(1)) if images else 0, int(images.group(2)) if images else 0,
                 int(images.group(3)) if images else 0,
                 float(frames.group(1)) if frames else 0.0,
                 int(frames.group(2)) if frames else 0,
                 int(audio.group(1) or audio.group(2)) if audio else 0,
                 int(prompt.group(1)), titles[0] if titles else "")


def check_totals(shown: Shown) -> None:
    used = shown.images * shown.per_image + shown.audio_tokens + shown.prompt_tokens
    assert shown.used == used, shown
    assert shown.left == max(shown.context - shown.used, 0), shown
    memory = (f" Plus {shown.memory} memory positions read through cross-attention."
              if shown.memory else "")
    if shown.used <= shown.context:
        assert shown.title == (f"Fits: {used} of {shown.context} used, {shown.left} left."
                               f"{memory}"), shown
    else:
        assert shown.title == (f"Over budget: {used} tokens do not fit in a context of "
                               f"{shown.context}; remove {used - shown.context} tokens."
                               f"{memory}"), shown


def shown_seconds(sliders) -> float:
    return float(readout(sliders["audio s"]))


def downsampled(frames: int) -> int:
    for _ in range(3):  # kernel 3, stride 2, padding 1: L -> ceil(L / 2)
        frames = math.ceil(frames / 2)
    return frames


def test_budget_calculator_recounts_on_every_slider(open_chapter, screenshots):
    chapter = open_chapter(CHAPTER)
    seconds = chapter.run_all(timeout_s=240)
    assert chapter.error_outputs() == []
    counts = chapter.execution_counts()
    assert counts == list(range(1, len(counts) + 1))

    area = chapter.output_of("budget_calculator(", plots=1)
    names = ("context", "images", "height px", "latents", "delimiters/img", "audio s",
             "hop samples")
    sliders = {name: slider(area, name) for name in names}

    def plot():
        return trace_paths(area, ".barlayer .trace path"), trace_paths(area, ".shapelayer path")

    def settled_read():  # a consistent page: the summary, details and title of one update
        def consistent():
            try:
                shown = read(area)
                check_totals(shown)
            except AssertionError:
                return None
            return shown

        return wait_for(consistent, 10, lambda: f"a consistent read-out: {read(area)}")

    def bar_lengths():
        return {trace["name"]: trace["x"] for trace in plotly_traces(area)}

    def check_bar(shown: Shown, what: str) -> None:
        """The stacked bar plotly drew holds the read-out's numbers, segment by segment."""
        drawn = {"images": [shown.images * shown.per_image], "audio": [shown.audio_tokens],
                 "prompt": [shown.prompt_tokens], "left for generation": [shown.left]}

        def context_bar():
            return {name: x for name, x in bar_lengths().items() if name in drawn}

        def memory_bar():
            bars = bar_lengths()
            return bars["image memory"][0] + bars["audio memory"][0]

        equals(context_bar, drawn, what=f"the stacked context bar after {what}")
        equals(memory_bar, shown.memory, what=f"the memory bar after {what}")

    def move(name: str, key: str, what):
        before, drawn = read(area), plot()
        press(sliders[name], key)
        after = wait_for(lambda: (s := settled_read()) != before and what(before, s) and s, 10,
                         lambda: f"{name} {key}: {before} -> {read(area)}")
        check_bar(after, f"{name} {key}")
        if after.used != before.used or after.context != before.context:
            changed(plot, drawn, what=f"the drawn bar after {name} {key}")
        return after

    shown = settled_read()
    check_totals(shown)
    check_bar(shown, "Run All")

    def selected_preset():
        active = area.locator(".widget-toggle-button.mod-active").all_inner_texts()
        return [text.strip() for text in active]

    shown = move("context", "End", lambda b, a: a.context == 8192 and a.used == b.used)
    equals(lambda: readout(sliders["context"]), "8192", what="the context read-out")
    assert selected_preset() == ["micro-omni"], "an input slider keeps the preset"

    shown = move("images", "ArrowRight",
                 lambda b, a: a.images == b.images + 1 and a.used == b.used + b.per_image)
    # micro-omni resizes every image to 224 x 224 and keeps its CLS token: still 1 per image.
    before = settled_read()
    press(sliders["height px"], "End")
    shown = wait_for(lambda: (s := settled_read()).image_height == 4096 and s, 10,
                     "height 4096 px")
    assert shown.per_image == before.per_image == 1 and shown.used == before.used
    shown = move("delimiters/img", "ArrowRight",
                 lambda b, a: a.per_image == b.per_image + 1
                 and a.used == b.used + a.images)
    assert selected_preset() == ["custom"], "a moved recipe control leaves the preset"

    # Latents only count in resampler mode: choose it, then one more latent per image.
    area.locator("select").filter(has_text="resampler latents").select_option(
        label="resampler latents")
    resampled = wait_for(lambda: (s := settled_read()).per_image == int(
        readout(sliders["latents"])) + int(readout(sliders["delimiters/img"])) and s, 10,
        "resampler mode: tokens per image = latents + delimiters")
    shown = move("latents", "ArrowRight",
                 lambda b, a: a.per_image == b.per_image + 1 and a.used == b.used + a.images)
    assert shown.per_image == resampled.per_image + 1

    framing = area.locator("select").filter(has_text="centre-padded").evaluate(
        "select => select.options[select.selectedIndex].text").replace("\xa0", " ")
    assert framing == "centre-padded (torch.stft)", f"unexpected STFT framing {framing!r}"
    shown = move("audio s", "End", lambda b, a: a.audio_seconds == 120.0)
    hop = int(readout(sliders["hop samples"]))
    assert shown.frames == 1 + 120 * SAMPLE_RATE // hop, shown
    assert shown.audio_tokens == downsampled(shown.frames), shown

    shown = move("hop samples", "ArrowRight", lambda b, a: a.frames < b.frames)
    hop = int(readout(sliders["hop samples"]))
    assert shown.frames == 1 + 120 * SAMPLE_RATE // hop, shown
    assert shown.audio_tokens == downsampled(shown.frames), shown

    # The mouse: drag the context window down to its minimum: over budget, a red band appears.
    bands = len(plot()[1])
    drag(chapter.page, sliders["context"], 0.0)
    equals(lambda: readout(sliders["context"]), "32", what="the context read-out after a drag")
    shown = wait_for(lambda: (s := settled_read()).context == 32 and s, 10, "context 32")
    assert shown.title.startswith("Over budget:") and shown.left == 0
    check_bar(shown, "dragging the context slider")
    equals(lambda: len(plot()[1]), bands + 1, what="the number of shapes (the red band)")

    # A thing to try from the chapter: press whisper. The prompt goes to the decoder's 448
    # positions, the clip to 1500 memory positions per started 30 s window (here 120 s: 4).
    area.locator(".widget-toggle-button").filter(has_text=re.compile("^whisper$")).click()
    shown = wait_for(lambda: (s := settled_read()).context == 448 and s, 10, "whisper preset")
    assert shown.memory == 1500 * math.ceil(shown_seconds(sliders) / 30), shown
    assert shown.images == 0 and shown.audio_tokens == 0 and shown.used == shown.prompt_tokens
    assert shown.title.startswith("Fits:"), shown
    check_bar(shown, "pressing whisper")
    assert selected_preset() == ["whisper"]

    # The long labels are readable: the checkbox's text and the longest downsampling option.
    label = area.locator(".widget-checkbox").filter(has_text="Whisper")
    assert label.evaluate("box => [...box.querySelectorAll('*')].every("
                          "e => e.scrollWidth <= e.clientWidth + 1)"), "checkbox label clipped"
    select = area.locator("select").filter(has_text="Qwen2-Audio")
    fits = select.evaluate("""select => {
        const ctx = document.createElement('canvas').getContext('2d');
        ctx.font = getComputedStyle(select).font;
        const widest = Math.max(...[...select.options].map(o => ctx.measureText(o.text).width));
        return widest + 24 <= select.clientWidth;  // 24 px: padding and the arrow
    }""")
    assert fits, "the downsampling dropdown clips its longest option"

    shot = chapter.screenshot(screenshots, area, "budget_calculator")
    print(f"chapter 07: ran in {seconds:.1f} s; screenshot {shot}")
