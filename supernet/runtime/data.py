"""Datasets and their loaders: digits, cifar10, npz, imagefolder, imagenet, fake.

    data = make_loaders("digits", "data", batch_size=64, val_fraction=0.1)
    for epoch in range(epochs):
        set_epoch(data.train, epoch)
        for x, y in data.train: ...

Splits never depend on a run's seed: the validation split is the first
`val_fraction` of one fixed permutation of the training pool, so a command
with a smaller `val_fraction` validates on a subset of a larger one's, and the
data a search scores on stays held out of supernet training. Where a dataset
has no test set of its own, the last TEST_FRACTION of that permutation is.

The training order is one permutation per (seed, epoch), cut into global
batches of `batch_size * world_size`; rank r takes the r-th chunk of each, so
N processes see exactly the samples of one process with N times the batch.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from ..errors import MissingFileError, UserError
from .checkpoint import rng_state, seed_all, set_rng_state

log = logging.getLogger(__name__)

# None: the photos' own (npz: theirs; imagefolder: own_image_size)
DEFAULT_IMAGE_SIZE = {"digits": 8, "cifar10": 32, "npz": None, "imagefolder": None, "imagenet": 224, "fake": 32}
SPLIT_SEED = 0
TEST_FRACTION = 0.2
FAKE_SAMPLES, FAKE_CLASSES = 12_000, 10
DIGITS_MEAN, DIGITS_STD = 0.3053, 0.3760        # of scikit-learn's digits scaled to [0, 1]
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


class DatasetError(UserError):
    """A dataset that is malformed or too small for the run."""


class DatasetNotFoundError(DatasetError, MissingFileError):
    """A dataset that is not where the config says."""


@dataclass
class Data:
    """The loaders of a run and what the model needs to know about the images."""
    train: DataLoader
    val: DataLoader | None     # None when val_fraction is 0 and there is no val folder
    test: DataLoader
    in_channels: int
    num_classes: int
    image_size: int
    classes: list[str]         # what each class index stands for: a folder's name, an npz file's label


def split_indices(n: int, val_fraction: float, test_fraction: float = 0.0):
    """(train, val, test) index arrays of a pool of n items, from the fixed permutation."""
    perm = np.random.default_rng(SPLIT_SEED).permutation(n)
    n_val, n_test = round(n * val_fraction), round(n * test_fraction)
    return perm[n_val:n - n_test], perm[:n_val], perm[n - n_test:]


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0])


class EpochSampler(Sampler[int]):
    """This rank's share of one seeded permutation per epoch (see the module docstring), or of the
    items in order (`shuffle=False`)."""

    def __init__(self, n: int, batch_size: int, rank: int = 0, world_size: int = 1, seed: int = 0,
                 shuffle: bool = True, split: str = "training"):
        self.n, self.batch_size, self.rank, self.world_size, self.seed = n, batch_size, rank, world_size, seed
        self.shuffle = shuffle
        self.num_batches = n // (batch_size * world_size)
        self.epoch = 0
        if self.num_batches == 0:
            raise DatasetError(f"the {split} split has {n} samples, fewer than one global batch "
                               f"({batch_size} x {world_size} processes)")

    def set_epoch(self, epoch: int):
        self.epoch = epoch

    def __len__(self):
        return self.num_batches * self.batch_size

    def __iter__(self):
        g = torch.Generator().manual_seed(_seed(self.seed, self.epoch))
        order = torch.randperm(self.n, generator=g) if self.shuffle else torch.arange(self.n)
        perm = order[:self.num_batches * self.batch_size * self.world_size]
        return iter(perm.view(self.num_batches, self.world_size, self.batch_size)[:, self.rank].reshape(-1).tolist())


def global_batches(dataset: Dataset, batch_size: int, rank: int = 0, world_size: int = 1) -> DataLoader:
    """`dataset` in order, cut into global batches of `batch_size * world_size` (a last partial one
    dropped) of which this rank takes its chunk: N processes see the micro-batches of one process
    with N times the batch, as in training (the relaxed search's validation batches)."""
    sampler = EpochSampler(len(dataset), batch_size, rank, world_size, shuffle=False, split="validation")
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=True)


def set_epoch(loader: DataLoader, epoch: int):
    """Seed a training loader for `epoch`: its order and its workers' augmentation randomness."""
    loader.sampler.set_epoch(epoch)
    loader.generator.manual_seed(_seed(loader.sampler.seed, epoch, 1))


def resume_epoch(loader: DataLoader, epoch: int, done: int):
    """An iterator over the batches of `epoch` from batch `done` on: the loader is replayed past the
    first `done`, so that a resumed epoch sees the batches (and augmentations) it would have seen."""
    set_epoch(loader, epoch)
    batches = iter(loader)
    for _ in range(done):
        next(batches)
    return batches


class Cutout:
    """Zero one random `length` x `length` square (clipped at the borders) of a CxHxW tensor."""

    def __init__(self, length: int):
        self.length = length

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        cy, cx = torch.randint(h, ()).item(), torch.randint(w, ()).item()
        x = x.clone()
        x[..., max(cy - self.length // 2, 0):cy + (self.length + 1) // 2,
          max(cx - self.length // 2, 0):cx + (self.length + 1) // 2] = 0
        return x


class _View(Dataset):
    """Items `indices` of `base` with `transform` applied to the image."""

    def __init__(self, base, indices, transform=None):
        self.base, self.indices, self.transform = base, indices, transform

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        x, y = self.base[int(self.indices[i])]
        return (self.transform(x) if self.transform else x), y


class _FakeImages(Dataset):
    """Random normal images with random labels, the same for an index every time (throughput only)."""

    def __init__(self, n: int, shape, num_classes: int):
        self.n, self.shape, self.num_classes = n, shape, num_classes

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return torch.randn(self.shape, generator=g), int(torch.randint(self.num_classes, (), generator=g))


@dataclass
class _Source:
    pool: Dataset                 # the training pool; val and test are split off it where missing
    val: Dataset | None
    test: Dataset | None
    train_tf: object
    eval_tf: object
    in_channels: int
    classes: list[str]
    image_size: int | None = None   # where the dataset fixes it (npz, imagefolder: their own, unless resized)


def _digits(root, size, download, cutout) -> _Source:
    from sklearn.datasets import load_digits
    digits = load_digits()
    x = (torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16 - DIGITS_MEAN) / DIGITS_STD
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    pool = list(zip(x, digits.target.tolist()))
    return _Source(pool, None, None, Cutout(cutout) if cutout else None, None, 1, [str(k) for k in range(10)])


def _cifar10(root, size, download, cutout) -> _Source:
    from torchvision import datasets
    from torchvision import transforms as T
    folder = Path(root) / "cifar-10-batches-py"
    if not folder.is_dir() and not download:
        raise DatasetNotFoundError(f"CIFAR-10 not found: looked for {folder}; set download=true to fetch it "
                                   f"there, or set data_dir to the folder that holds cifar-10-batches-py")
    if download:
        _rank0_first(lambda: datasets.CIFAR10(root, train=True, download=True))
    try:
        pool, test = datasets.CIFAR10(root, train=True), datasets.CIFAR10(root, train=False)
    except RuntimeError as e:
        raise DatasetNotFoundError(f"CIFAR-10 in {folder} is incomplete or corrupted ({e}); "
                                   "delete it and set download=true") from None
    resize = [T.Resize(size)] if size != 32 else []
    tail = [T.ToTensor(), T.Normalize(CIFAR_MEAN, CIFAR_STD)] + ([Cutout(cutout)] if cutout else [])
    train_tf = T.Compose(resize + [T.RandomCrop(size, padding=4), T.RandomHorizontalFlip()] + tail)
    eval_tf = T.Compose(resize + [T.ToTensor(), T.Normalize(CIFAR_MEAN, CIFAR_STD)])
    return _Source(pool, None, test, train_tf, eval_tf, 3, list(pool.classes))


def class_indices(labels: np.ndarray, source) -> tuple[np.ndarray, list[str]]:
    """Labels as class indices 0..K-1, and the label each index stands for: labels that are not
    0..K-1 already (-1, 0, 1, or 0, 1000, 2000) are numbered in sorted order, and the log says so.
    Labels that are not integers, or of a single class, are a DatasetError naming `source`."""
    if not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(f"{source}: the labels y must be integers, got {labels.dtype} values such as {labels[:3].tolist()}")
    values, indices = np.unique(labels, return_inverse=True)
    if len(values) < 2:
        raise DatasetError(f"{source}: every label is {values[0] if len(values) else 'missing'}; a classifier needs "
                           "two classes at least")
    if not np.array_equal(values, np.arange(len(values))):
        log.info("%s: its %d labels %s are classes 0..%d, in that order", source, len(values), _listed(values),
                 len(values) - 1)
    return indices.astype(np.int64), [str(v) for v in values]


def _listed(values) -> str:
    values = [str(v) for v in values]
    return ", ".join(values) if len(values) <= 6 else f"{', '.join(values[:3])}, ..., {', '.join(values[-2:])}"


def _npz(root, size, download, cutout) -> _Source:
    """Photos from an .npz of `x` (N x C x H x W, or N x H x W x C, uint8) and `y` (N labels), read into
    memory; normalised by their own per-channel mean and std, augmented as CIFAR is (pad-4 crop, flip)."""
    from torchvision import transforms as T
    path = Path(root)
    if not path.is_file():
        raise DatasetNotFoundError(f"photo file {path} does not exist; set data_dir to an .npz of x (images) "
                                   "and y (labels), e.g. ../shared/data/cifar10_5k.npz")
    with np.load(path, allow_pickle=False) as f:
        if "x" not in f.files or "y" not in f.files:
            raise DatasetError(f"{path} must hold arrays x (images) and y (labels), holds {', '.join(f.files)}")
        x, y = f["x"], f["y"]
    if x.ndim != 4 or x.dtype != np.uint8 or y.ndim != 1 or len(x) != len(y):
        raise DatasetError(f"{path}: x must be N uint8 images (N x C x H x W), y N labels; got x {x.shape} "
                           f"{x.dtype}, y {y.shape}")
    labels, classes = class_indices(y, path)
    if x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    images = torch.from_numpy(np.ascontiguousarray(x)).float().div_(255)
    if size and size != images.shape[-1]:
        images = F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    mean, std = images.mean((0, 2, 3)), images.std((0, 2, 3))
    images = (images - mean[:, None, None]) / std[:, None, None]
    crop = images.shape[-1]
    train_tf = T.Compose([T.RandomCrop(crop, padding=4), T.RandomHorizontalFlip()] + ([Cutout(cutout)] if cutout else []))
    pool = list(zip(images, labels.tolist()))
    return _Source(pool, None, None, train_tf, None, images.shape[1], classes, crop)


def read_image(path: str):
    """An image file as an RGB PIL image; one that cannot be read is a DatasetError that names it."""
    from PIL import Image, UnidentifiedImageError
    try:
        with open(path, "rb") as f:
            return Image.open(f).convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise DatasetError(f"{path} is not a readable image ({e}); remove or replace it") from None


def _image_folder(path: Path):
    from torchvision.datasets import ImageFolder
    if not path.is_dir():
        raise DatasetNotFoundError(f"image folder {path} does not exist")
    try:
        folder = ImageFolder(str(path), loader=read_image)
    except FileNotFoundError as e:   # no class folders, or a class folder without images
        raise DatasetError(f"malformed image folder {path}: {e} It must hold one folder of images per class") from None
    if len(folder.classes) < 2:
        raise DatasetError(f"image folder {path} holds one class folder ({folder.classes[0]!r}); a classifier needs "
                           "two classes at least")
    return folder


def own_image_size(folders) -> int:
    """The size the photos of `folders` (ImageFolders) are trained at when no image_size is set: their
    shorter side where every photo has the same, else the median of their shorter sides rounded to a
    multiple of 8 (the log says which). Every file's header is read, so a file that is no image is a
    DatasetError that names it before training starts."""
    from PIL import Image, UnidentifiedImageError
    sides = []
    for folder in folders:
        for path, _ in folder.samples:
            try:
                with Image.open(path) as image:
                    sides.append(min(image.size))
            except (UnidentifiedImageError, OSError, SyntaxError) as e:
                raise DatasetError(f"{path} is not a readable image ({e}); remove or replace it") from None
    sides = np.asarray(sides)
    if (sides == sides[0]).all():
        log.info("image folder: every photo's shorter side is %d px: image_size %d", sides[0], sides[0])
        return int(sides[0])
    size = max(8, int(np.median(sides) / 8 + 0.5) * 8)
    log.info("image folder: the photos' shorter sides run from %d to %d px (median %g): image_size %d, the median "
             "rounded to a multiple of 8 (set image_size to choose another)", sides.min(), sides.max(),
             np.median(sides), size)
    return size


def _folders(root, size, download, cutout, imagenet: bool) -> _Source:
    from timm.data import create_transform
    root = Path(root)
    if imagenet:   # the standard layout; its val set is the test set, validation is split off train
        for part in ("train", "val"):
            if not (root / part).is_dir():
                raise DatasetNotFoundError(f"ImageNet not found: looked for {root / part}; set data_dir to "
                                           "a folder with train/ and val/ folders of class folders")
        pool, val, test = _image_folder(root / "train"), None, _image_folder(root / "val")
    elif (root / "train").is_dir():
        pool = _image_folder(root / "train")
        val, test = (_image_folder(root / p) if (root / p).is_dir() else None for p in ("val", "test"))
    else:
        pool, val, test = _image_folder(root), None, None
    for part in (val, test):
        if part is not None and part.classes != pool.classes:
            raise DatasetError(f"the class folders of {part.root} differ from those of {pool.root}")
    size = size or own_image_size([part for part in (pool, val, test) if part is not None])
    jitter, scale = ((0.4, 0.4, 0.4, 0.2), (0.08, 1.0)) if imagenet else (None, (0.25, 1.0))
    train_tf = create_transform(size, is_training=True, color_jitter=jitter, scale=scale)
    if cutout:
        train_tf.transforms.append(Cutout(cutout))
    return _Source(pool, val, test, train_tf, create_transform(size, crop_pct=0.875), 3, list(pool.classes), size)


def _fake(root, size, download, cutout) -> _Source:
    return _Source(_FakeImages(FAKE_SAMPLES, (3, size, size), FAKE_CLASSES), None, None, None, None, 3,
                   [str(k) for k in range(FAKE_CLASSES)])


def _rank0_first(fn):
    """Run `fn` on rank 0, then on the others (a download must not race)."""
    distributed = dist.is_available() and dist.is_initialized()
    if not distributed or dist.get_rank() == 0:
        fn()
    if distributed:
        dist.barrier()


SOURCES = {"digits": _digits, "cifar10": _cifar10, "npz": _npz, "imagefolder": functools.partial(_folders, imagenet=False),
           "imagenet": functools.partial(_folders, imagenet=True), "fake": _fake}


def make_loaders(dataset: str, data_dir: str, batch_size: int, *, image_size: int | None = None,
                 val_fraction: float = 0.1, workers: int = 2, seed: int = 0, download: bool = False,
                 cutout: int = 0, rank: int = 0, world_size: int = 1, shard_eval: bool = True) -> Data:
    """The train/val/test loaders of `dataset` (a key of SOURCES) read from `data_dir`.

    `batch_size` is per process; the train loader is this rank's share (see the module
    docstring) and must be re-seeded each epoch with `set_epoch`. `image_size` None means the
    dataset's default (DEFAULT_IMAGE_SIZE). `cutout` > 0 adds Cutout of that length to the
    training images. With `shard_eval`, the val/test loaders hold this rank's shard
    (items rank, rank + world_size, ...; no padding), so sum correct and total over ranks.
    """
    if dataset not in SOURCES:
        raise DatasetError(f"unknown dataset {dataset!r}; choose one of {', '.join(SOURCES)}")
    size = image_size or DEFAULT_IMAGE_SIZE[dataset]
    src = SOURCES[dataset](data_dir, size, download, cutout)
    size = size or src.image_size
    train_idx, val_idx, test_idx = split_indices(len(src.pool), 0.0 if src.val is not None else val_fraction,
                                                 0.0 if src.test is not None else TEST_FRACTION)
    train = _View(src.pool, train_idx, src.train_tf)
    val = src.val if src.val is not None else _View(src.pool, val_idx, None)
    test = src.test if src.test is not None else _View(src.pool, test_idx, None)
    val, test = (_View(d, np.arange(len(d)), src.eval_tf) for d in (val, test))
    sampler = EpochSampler(len(train), batch_size, rank, world_size, seed)
    common = {"batch_size": batch_size, "num_workers": workers, "pin_memory": torch.cuda.is_available()}
    train_loader = DataLoader(train, sampler=sampler, drop_last=True, generator=torch.Generator(), **common)

    def eval_loader(d):   # its own generator, so iterating it never draws from the global RNG
        d = Subset(d, range(rank, len(d), world_size)) if shard_eval else d
        return DataLoader(d, generator=torch.Generator(), **common)

    log.info("%s: %d train, %d val, %d test images of %dx%d, %d classes", dataset, len(train), len(val),
             len(test), size, size, len(src.classes))
    return Data(train_loader, eval_loader(val) if len(val) else None, eval_loader(test),
                src.in_channels, len(src.classes), size, src.classes)


def take_batches(loader, count: int | None, device, channels_last: bool = False) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first `count` batches of `loader` (all when None), on `device` (images channels_last if asked).
    Augmentation that runs in this process (workers=0) draws from the global generators: they are
    seeded here and restored after, so that supernet-train, nas-search and tools/ranking.py score
    on the same images every time."""
    batches = []
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    state = rng_state()
    seed_all(0)
    for x, y in loader:
        if count is not None and len(batches) >= count:
            break
        batches.append((x.to(device, memory_format=memory_format), y.to(device)))
    set_rng_state(state)
    return batches
