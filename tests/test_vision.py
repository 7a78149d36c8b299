import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.vision import (
    PatchEmbedding,
    ViTEncoder,
    patch_grid,
    patch_grid_lines,
    patchify,
)

SHAPES = [(2, 3, 224, 224, 16), (1, 1, 224, 224, 32), (3, 2, 12, 20, 4), (1, 3, 336, 336, 14),
          (2, 1, 8, 8, 1), (1, 1, 8, 8, 8)]


@pytest.mark.parametrize("batch, channels, height, width, patch", SHAPES)
def test_patchify_equals_functional_unfold(batch, channels, height, width, patch):
    images = torch.randn(batch, channels, height, width)
    reference = F.unfold(images, kernel_size=patch, stride=patch).transpose(1, 2)
    torch.testing.assert_close(patchify(images, patch), reference, rtol=0, atol=0)


@pytest.mark.parametrize("batch, channels, height, width, patch", SHAPES)
def test_patchify_equals_tensor_unfold(batch, channels, height, width, patch):
    images = torch.randn(batch, channels, height, width)
    blocks = images.unfold(2, patch, patch).unfold(3, patch, patch)  # (B, C, rows, cols, p, p)
    reference = blocks.permute(0, 2, 3, 1, 4, 5).reshape(batch, -1, channels * patch * patch)
    torch.testing.assert_close(patchify(images, patch), reference, rtol=0, atol=0)


def test_patches_are_numbered_row_by_row_with_channels_first():
    images = torch.arange(2 * 4 * 6, dtype=torch.float32).reshape(1, 2, 4, 6)
    patches = patchify(images, 2)  # 2 rows x 3 columns of 2x2 patches
    assert patches.shape == (1, 6, 8)
    torch.testing.assert_close(patches[0, 0], images[0, :, 0:2, 0:2].flatten())
    torch.testing.assert_close(patches[0, 1], images[0, :, 0:2, 2:4].flatten())  # to the right
    torch.testing.assert_close(patches[0, 3], images[0, :, 2:4, 0:2].flatten())  # next row
    # Channel 0's four pixels come before channel 1's.
    assert patches[0, 0].tolist() == [0, 1, 6, 7, 24, 25, 30, 31]


def test_reference_design_shapes():
    images = torch.rand(2, 3, 224, 224)
    assert patchify(images, 16).shape == (2, 196, 768)
    assert patchify(images[:, :1], 16).shape == (2, 196, 256)
    vit = ViTEncoder(224, 16, 1, dim=128, depth=4, num_heads=4)
    assert vit(images[:, :1]).shape == (2, 128)
    tokens = ViTEncoder(224, 16, 1, dim=128, depth=1, num_heads=4, pool="none")(images[:, :1])
    assert tokens.shape == (2, 197, 128)


@pytest.mark.parametrize("patch, per_side, count", [(8, 28, 784), (14, 16, 256), (16, 14, 196),
                                                    (28, 8, 64), (32, 7, 49), (224, 1, 1)])
def test_patch_counts_for_224(patch, per_side, count):
    grid = patch_grid(224, patch)
    assert (grid["patches_per_side"], grid["num_patches"], grid["remainder"]) == (
        per_side, count, 0)
    assert grid["tokens_with_cls"] == count + 1


def test_patch_grid_reports_the_uncovered_remainder():
    grid = patch_grid(224, 24)  # 9 whole patches = 216 px, 8 px left over
    assert (grid["num_patches"], grid["remainder"]) == (81, 8)
    assert patch_grid(336, 14)["num_patches"] == 576  # LLaVA-1.5: CLIP ViT-L/14 at 336 px


def test_patch_grid_lines_cover_whole_patches_only():
    xs, ys = patch_grid_lines(224, 24)
    numbers = [v for v in xs + ys if v is not None]
    assert max(numbers) == 216 and min(numbers) == 0
    assert xs.count(None) == 2 * 10  # 10 boundaries per side, a vertical and a horizontal each
    with pytest.raises(ValueError, match="patch_size"):
        patch_grid(224, 0)


def test_patch_embedding_equals_a_strided_convolution():
    torch.manual_seed(0)
    embed = PatchEmbedding(32, 8, 3, dim=10)
    conv = nn.Conv2d(3, 10, kernel_size=8, stride=8)
    with torch.no_grad():
        conv.weight.copy_(embed.projection.weight.reshape(10, 3, 8, 8))
        conv.bias.copy_(embed.projection.bias)
    images = torch.randn(2, 3, 32, 32)
    expected = conv(images).flatten(2).transpose(1, 2)  # (B, N, dim)
    torch.testing.assert_close(embed(images), expected, rtol=1e-5, atol=1e-5)


def test_cls_pool_is_the_first_token_of_the_full_output():
    torch.manual_seed(0)
    vit = ViTEncoder(32, 8, 3, dim=16, depth=2, num_heads=2, pool="none")
    images = torch.randn(3, 3, 32, 32)
    tokens = vit(images)
    vit.pool = "cls"
    torch.testing.assert_close(vit(images), tokens[:, 0])


def test_attention_mixes_information_across_patches():
    torch.manual_seed(0)
    vit = ViTEncoder(32, 8, 1, dim=16, depth=2, num_heads=2, pool="none").eval()
    images = torch.randn(1, 1, 32, 32)
    changed = images.clone()
    changed[..., 24:, 24:] += 1.0  # only the last patch (index 15)
    before, after = vit(images), vit(changed)
    assert (after[0, 1] - before[0, 1]).abs().max() > 1e-4  # the first patch's token moved
    assert (after[0, 0] - before[0, 0]).abs().max() > 1e-4  # so did CLS


def test_position_embeddings_make_patch_order_matter():
    torch.manual_seed(0)
    vit = ViTEncoder(16, 8, 1, dim=16, depth=1, num_heads=2).eval()
    images = torch.randn(1, 1, 16, 16)
    swapped = images.clone()
    swapped[..., :8, :8], swapped[..., :8, 8:] = images[..., :8, 8:], images[..., :8, :8]
    assert (vit(images) - vit(swapped)).abs().max() > 1e-4


def test_encoder_learns_gradients_reach_every_parameter():
    vit = ViTEncoder(16, 8, 1, dim=16, depth=1, num_heads=2)
    vit(torch.randn(2, 1, 16, 16)).sum().backward()
    assert all(p.grad is not None for p in vit.parameters())


def test_image_size_not_divisible_by_patch_size_raises():
    with pytest.raises(ValueError, match="image_size 225 is not divisible by patch_size 16"):
        PatchEmbedding(225, 16, 3, 8)
    with pytest.raises(ValueError, match="not divisible by patch_size"):
        ViTEncoder(100, 16, 3, 8, 1, 2)
    with pytest.raises(ValueError, match="height 225 is not divisible by patch_size 16"):
        patchify(torch.zeros(1, 3, 225, 224), 16)
    with pytest.raises(ValueError, match="images"):
        patchify(torch.zeros(3, 224, 224), 16)


def test_wrong_channel_count_raises_in_forward():
    vit = ViTEncoder(32, 8, 3, 16, 1, 2)
    with pytest.raises(ValueError, match="in_channels=3"):
        vit(torch.zeros(1, 1, 32, 32))
    with pytest.raises(ValueError, match="image_size"):
        vit(torch.zeros(1, 3, 64, 64))


def test_dim_not_divisible_by_num_heads_raises():
    with pytest.raises(ValueError, match="dim 10 is not divisible by num_heads 4"):
        ViTEncoder(32, 8, 3, 10, 1, 4)


def test_bad_pool_raises():
    with pytest.raises(ValueError, match="pool"):
        ViTEncoder(32, 8, 3, 16, 1, 2, pool="mean")
