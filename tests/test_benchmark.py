"""Chapter 09's benchmark: every design builds, answers in (B, 10), trains, and is costed right."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from course_lib.architectures import DecoderLM, FlamingoLikeModel
from course_lib.benchmark import (
    DESIGNS,
    WORDS,
    DigitTask,
    build_design,
    design_cost,
    design_loss,
    digit_logits,
    evaluate_design,
    load_digit_task,
    train_design,
)


@pytest.fixture(scope="module")
def language_model():
    torch.manual_seed(0)
    return DecoderLM(len(WORDS), 64, depth=2, num_heads=4, ff_dim=128).requires_grad_(False)


def tiny_task(n=24, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return DigitTask(torch.randn(n, 1, 64, generator=generator),
                     torch.randn(n, 5, 64, generator=generator),
                     torch.arange(n) % 10)


@pytest.mark.parametrize("design", DESIGNS)
def test_every_design_scores_ten_digits_with_any_modality_missing(design, language_model):
    torch.manual_seed(0)
    model = build_design(design, language_model=language_model).eval()
    task = tiny_task(6)
    with torch.no_grad():
        for image, audio in ((task.image, task.audio), (None, task.audio), (task.image, None)):
            assert digit_logits(model, image, audio).shape == (6, 10)


@pytest.mark.parametrize("design", DESIGNS)
def test_one_training_step_changes_each_designs_loss(design, language_model):
    torch.manual_seed(0)
    model = build_design(design, language_model=language_model)
    task = tiny_task()
    frozen = {name: p.detach().clone() for name, p in model.named_parameters()
              if not p.requires_grad}
    before = design_loss(model, task.image, task.audio, task.labels)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    before.backward()
    optimizer.step()
    after = design_loss(model, task.image, task.audio, task.labels)
    assert torch.isfinite(before) and abs(after.item() - before.item()) > 1e-4
    for name, p in model.named_parameters():  # frozen parts stay bit-identical
        if name in frozen:
            assert torch.equal(p, frozen[name]), name
    if isinstance(model, FlamingoLikeModel):
        assert frozen and all(name.startswith("language_model") for name in frozen)


def test_train_design_keeps_the_best_validation_epoch(language_model):
    torch.manual_seed(0)
    model = build_design("early", width=16)
    fit, validation = tiny_task(40, seed=1), tiny_task(20, seed=2)
    history, epoch, wall, cpu = train_design(model, fit, validation, epochs=3, seed=0,
                                             device="cpu", batch_size=8)
    curve = history.epochs["validation accuracy"]
    assert len(curve) == 3 and epoch == curve.index(max(curve)) + 1
    logits = digit_logits(model, validation.image, validation.audio)
    kept = (logits.argmax(-1) == validation.labels).float().mean().item()
    assert kept == pytest.approx(max(curve))  # the weights restored are the best epoch's
    assert wall > 0 and cpu > 0


def test_evaluate_design_reports_the_four_conditions():
    torch.manual_seed(0)
    model = build_design("late", width=16)
    task = tiny_task(10)
    scores = evaluate_design(model, task, torch.zeros_like(task.image))
    assert set(scores) == {"accuracy", "image missing", "audio missing", "image noise"}
    assert all(0.0 <= v <= 1.0 for v in scores.values())


def test_cost_of_early_fusion_and_llava_against_hand_formulas(language_model):
    early = build_design("early", width=64)
    # concatenated 128 inputs -> 64 -> 64 -> 10, 2 FLOPs per multiply-add
    assert design_cost(early)["flops"] == 2 * (128 * 64 + 64 * 64 + 64 * 10)
    llava = build_design("LLaVA-like", language_model=language_model)
    cost = design_cost(llava)
    length, d, ff, depth = 5 + 6, 64, 128, 2  # 5 text tokens + 1 image + 5 audio tokens
    attention = depth * (4 * length * d * d * 2 + 4 * length * length * d)
    mlp = depth * 6 * length * d * ff + 2 * d * len(WORDS)  # SwiGLU, head at one position
    projector = 2 * 6 * (64 * d + d * d)
    assert cost["lm sequence"] == length
    assert cost["attention flops"] == attention
    assert cost["flops"] == attention + mlp + projector
    assert cost["trainable"] == cost["parameters"]  # stage 2: projector and LM learn


@pytest.mark.parametrize("design", DESIGNS)
def test_cost_matches_torch_flop_counter(design, language_model):
    """FlopCounterMode counts every matrix product except those inside CPU scaled dot-product
    attention (the decoder LM's); those 4 L^2 D per layer are added by hand."""
    torch.manual_seed(0)
    model = build_design(design, language_model=language_model).eval()
    task = tiny_task(1)
    with FlopCounterMode(display=False) as counter:
        digit_logits(model, task.image, task.audio)
    counted = counter.get_total_flops()
    lm_length = {"LLaVA-like": 11, "Flamingo-like": 6}.get(design)
    if lm_length is not None:
        counted += 2 * 4 * lm_length * lm_length * 64
    assert design_cost(model)["flops"] == counted


def test_bad_inputs_raise_errors_naming_the_argument(language_model):
    with pytest.raises(ValueError, match="design"):
        build_design("transformer")
    with pytest.raises(ValueError, match="width"):
        build_design("early", width=12)
    with pytest.raises(ValueError, match="language_model"):
        build_design("Flamingo-like")
    with pytest.raises(ValueError, match="audio"):
        DigitTask(torch.zeros(3, 1, 64), torch.zeros(3, 5, 32), torch.zeros(3, dtype=torch.long))
    task = tiny_task(4)
    with pytest.raises(ValueError, match="epochs"):
        train_design(build_design("early"), task, task, epochs=0, seed=0, device="cpu")
    with pytest.raises(ValueError, match="validation"):
        train_design(build_design("early"), task, "val", epochs=1, seed=0, device="cpu")
    with pytest.raises(ValueError, match="noisy_images"):
        evaluate_design(build_design("early"), task, torch.zeros(4, 64))
    with pytest.raises(ValueError, match="image_noise"):
        load_digit_task(image_noise=0.0)
    with pytest.raises(ValueError, match="model"):
        design_cost(torch.nn.Linear(2, 2))


def test_chapter_09_trains_on_the_setup_cells_device_and_compares_with_interval_helpers():
    import ast
    from pathlib import Path

    import nbformat

    path = Path(__file__).resolve().parent.parent / "notebooks" / "09_fusion_benchmark.ipynb"
    cells = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    calls = [node for cell in cells for node in ast.walk(ast.parse(cell))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
             and node.func.id in ("train_design", "pretrain_digit_lm")]
    assert len(calls) == 2
    for call in calls:
        device = [k.value for k in call.keywords if k.arg == "device"]
        assert device and isinstance(device[0], ast.Name) and device[0].id == "device"
    helpers = ("comparison_table(", "describe_comparison(", "noise_words(")
    assert sum(any(h in cell for h in helpers) for cell in cells) >= 4
    assert not any("class " in cell and "nn.Module" in cell for cell in cells)
