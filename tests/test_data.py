import itertools
import random

import numpy as np
import pytest
import torch
from PIL import Image

from supernet.runtime.checkpoint import seed_all
from supernet.runtime.data import (
    Cutout,
    DatasetError,
    DatasetNotFoundError,
    EpochSampler,
    make_loaders,
    set_epoch,
    split_indices,
    take_batches,
)


def test_split_is_a_partition_and_smaller_val_fractions_are_nested():
    train, val, test = split_indices(1000, 0.2, 0.1)
    assert (len(train), len(val), len(test)) == (700, 200, 100)
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(1000))
    _, small_val, small_test = split_indices(1000, 0.05, 0.1)
    assert set(small_val) <= set(val) and np.array_equal(small_test, test)


def test_n_ranks_see_the_batches_of_one_process_with_n_times_the_batch():
    one = EpochSampler(103, batch_size=8, seed=3)
    ranks = [EpochSampler(103, batch_size=4, rank=r, world_size=2, seed=3) for r in range(2)]
    for s in [one, *ranks]:
        s.set_epoch(5)
    big = torch.tensor(list(one)).view(-1, 8)
    parts = [torch.tensor(list(s)).view(-1, 4) for s in ranks]
    assert len(big) == 103 // 8 and torch.equal(big, torch.cat(parts, dim=1))
    assert len(set(big.flatten().tolist())) == big.numel()
    one.set_epoch(6)
    assert not torch.equal(torch.tensor(list(one)).view(-1, 8), big)


def test_digits_loaders():
    data = make_loaders("digits", "unused", batch_size=32, val_fraction=0.2, workers=0)
    assert (data.in_channels, data.num_classes, data.image_size) == (1, 10, 8)
    sizes = [len(loader.dataset) for loader in (data.train, data.val, data.test)]
    assert sum(sizes) == 1797 and sizes[1] == round(1797 * 0.2)
    set_epoch(data.train, 0)
    x, y = next(iter(data.train))
    assert x.shape == (32, 1, 8, 8) and y.shape == (32,) and y.dtype == torch.int64
    images = torch.cat([x for x, _ in data.test])
    assert abs(images.mean().item()) < 0.1 and abs(images.std().item() - 1) < 0.1


def test_digits_resized_and_sharded_eval():
    shards = [make_loaders("digits", "", 16, image_size=12, rank=r, world_size=2, workers=0) for r in (0, 1)]
    assert next(iter(shards[0].val))[0].shape[-2:] == (12, 12)
    labels = [torch.cat([y for _, y in s.val]) for s in shards]
    whole = torch.cat([y for _, y in make_loaders("digits", "", 16, workers=0).val])
    assert torch.equal(torch.stack([labels[0][:len(labels[1])], labels[1]], 1).flatten(), whole[:2 * len(labels[1])])


def test_missing_cifar10_says_where_it_looked(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=rf"{tmp_path}/cifar-10-batches-py.*download=true"):
        make_loaders("cifar10", str(tmp_path), 8)
    with pytest.raises(DatasetNotFoundError, match=rf"{tmp_path}/train"):
        make_loaders("imagenet", str(tmp_path), 8)
    with pytest.raises(DatasetError, match="unknown dataset 'mnist'"):
        make_loaders("mnist", str(tmp_path), 8)


def make_tree(root, classes=("cat", "dog"), per_class=6, sizes=((20, 30), (41, 13))):
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            w, h = sizes[i % len(sizes)]
            pixels = np.random.default_rng(i).integers(0, 255, (h, w, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / c / f"{i}.png")


def test_imagefolder_of_any_image_size(tmp_path):
    make_tree(tmp_path / "train")
    make_tree(tmp_path / "test", per_class=2)
    data = make_loaders("imagefolder", str(tmp_path), 4, image_size=16, val_fraction=0.25, workers=0)
    assert (data.in_channels, data.num_classes, data.image_size) == (3, 2, 16)
    assert (len(data.train.dataset), len(data.val.dataset), len(data.test.dataset)) == (9, 3, 4)
    set_epoch(data.train, 0)
    assert next(iter(data.train))[0].shape == (4, 3, 16, 16)
    assert next(iter(data.test))[0].shape == (4, 3, 16, 16)


def test_augmentation_is_seeded_by_epoch(tmp_path):
    make_tree(tmp_path)
    data = make_loaders("imagefolder", str(tmp_path), 4, image_size=8, val_fraction=0, workers=1)

    def epoch(e):
        set_epoch(data.train, e)
        return torch.cat([x for x, _ in data.train])

    assert torch.equal(epoch(0), epoch(0)) and not torch.equal(epoch(0), epoch(1))


def test_scoring_batches_are_the_same_images_every_time(tmp_path):
    """In-process augmentation (timm's draws from Python's random, torchvision's from torch's) draws
    from the global generators: take_batches fixes them, and leaves them as it found them."""
    make_tree(tmp_path)
    data = make_loaders("imagefolder", str(tmp_path), 4, image_size=8, val_fraction=0, workers=0)
    set_epoch(data.train, 0)
    before = torch.get_rng_state(), random.getstate()
    first = take_batches(data.train, 2, "cpu")
    assert torch.equal(torch.get_rng_state(), before[0]) and random.getstate() == before[1]
    seed_all(123)
    second = take_batches(data.train, 2, "cpu")
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(first, second))
    set_epoch(data.train, 0)
    augmented = [x for x, _ in itertools.islice(iter(data.train), 2)]   # the global stream, elsewhere
    assert not all(torch.equal(a, b) for (a, _), b in zip(first, augmented))


@pytest.mark.parametrize("layout", ["no_classes", "empty_class"])
def test_malformed_imagefolder_is_one_clear_error(tmp_path, layout):
    (tmp_path / "cat").mkdir() if layout == "empty_class" else (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match=rf"malformed image folder {tmp_path}"):
        make_loaders("imagefolder", str(tmp_path), 4)


def test_imagefolder_splits_must_share_classes(tmp_path):
    make_tree(tmp_path / "train")
    make_tree(tmp_path / "val", classes=("cat", "cow"))
    with pytest.raises(DatasetError, match="class folders"):
        make_loaders("imagefolder", str(tmp_path), 4)


def test_fake_is_deterministic():
    a, b = (make_loaders("fake", "", 8, image_size=10, workers=0) for _ in range(2))
    xa, ya = next(iter(a.test))
    xb, yb = next(iter(b.test))
    assert xa.shape == (8, 3, 10, 10) and torch.equal(xa, xb) and torch.equal(ya, yb)


def test_cutout_zeroes_one_clipped_square():
    torch.manual_seed(1)
    out = Cutout(16)(torch.ones(3, 32, 32))
    torch.manual_seed(1)
    cy, cx = torch.randint(32, ()).item(), torch.randint(32, ()).item()
    area = (min(cy + 8, 32) - max(cy - 8, 0)) * (min(cx + 8, 32) - max(cx - 8, 0))
    assert (out[0] == 0).sum().item() == area and torch.equal(out[0], out[2])
