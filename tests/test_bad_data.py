"""Photos a user brings: each loader's own size, and bad data as one line that names what is wrong,
from make_loaders and from the command (no traceback)."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from supernet.runtime.data import DatasetError, make_loaders, set_epoch

ROOT = Path(__file__).resolve().parents[1]


def photos(root: Path, classes=("cat", "dog"), per_class=6, sizes=((32, 32),)) -> Path:
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            w, h = sizes[i % len(sizes)]
            pixels = np.random.default_rng(i).integers(0, 255, (h, w, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / c / f"{i}.png")
    return root


def npz(path: Path, labels) -> Path:
    x = np.random.default_rng(0).integers(0, 255, (len(labels), 3, 8, 8), dtype=np.uint8)
    np.savez(path, x=x, y=np.asarray(labels))
    return path


def test_an_image_folder_trains_at_its_photos_own_size(tmp_path, caplog):
    caplog.set_level("INFO")
    data = make_loaders("imagefolder", str(photos(tmp_path / "same")), 4, val_fraction=0.25, workers=0)
    assert data.image_size == 32 and data.classes == ["cat", "dog"]
    set_epoch(data.train, 0)
    assert next(iter(data.train))[0].shape == (4, 3, 32, 32)
    # sizes that differ: the median of the shorter sides (20, 45, 13, each four times: 20), to a multiple of 8
    mixed = photos(tmp_path / "mixed", sizes=((20, 30), (45, 60), (13, 41)))
    assert make_loaders("imagefolder", str(mixed), 4, workers=0).image_size == 24
    assert "the median rounded to a multiple of 8" in caplog.text
    assert make_loaders("imagefolder", str(mixed), 4, image_size=40, workers=0).image_size == 40   # as told


@pytest.mark.parametrize("labels, classes", [([-1, 0, 1] * 4, ["-1", "0", "1"]),
                                             ([0, 1000, 2000] * 4, ["0", "1000", "2000"]),
                                             ([0, 1, 2] * 4, ["0", "1", "2"])])
def test_npz_labels_are_numbered_in_sorted_order(tmp_path, labels, classes):
    data = make_loaders("npz", str(npz(tmp_path / "p.npz", labels)), 2, val_fraction=0, workers=0)
    assert data.num_classes == 3 and data.classes == classes
    y = torch.cat([y for _, y in data.test])
    assert set(y.tolist()) <= {0, 1, 2}


@pytest.mark.parametrize("make, message", [
    (lambda p: npz(p / "one.npz", [4] * 10), "one.npz: every label is 4; a classifier needs two classes at least"),
    (lambda p: npz(p / "float.npz", [0.5, 1.5] * 5), "float.npz: the labels y must be integers, got float64"),
    (lambda p: photos(p / "single", classes=("cat",)), "holds one class folder ('cat'); a classifier needs two"),
])
def test_one_class_or_labels_that_are_no_classes_are_refused(tmp_path, make, message):
    source = make(tmp_path)
    with pytest.raises(DatasetError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_loaders("npz" if source.suffix else "imagefolder", str(source), 2, workers=0)


def corrupt(folder: Path) -> Path:
    bad = folder / "dog" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n but not an image")
    return bad


def test_a_file_that_is_no_image_is_named_before_training(tmp_path):
    bad = corrupt(photos(tmp_path / "p"))
    with pytest.raises(DatasetError, match=f"{bad} is not a readable image"):
        make_loaders("imagefolder", str(tmp_path / "p"), 4, workers=0)


@pytest.mark.parametrize("workers", [0, 1])
def test_imagenet_names_an_unreadable_file_when_it_comes_to_load_it(tmp_path, workers):
    """ImageNet is too large to read every header first: the file is named when a batch needs it."""
    for part in ("train", "val"):
        photos(tmp_path / part)
    bad = corrupt(tmp_path / "val")
    data = make_loaders("imagenet", str(tmp_path), 4, image_size=16, val_fraction=0, workers=workers)
    with pytest.raises(DatasetError, match=f"{bad} is not a readable image"):
        list(data.test)
    single = tmp_path / "single"
    for part in ("train", "val"):
        photos(single / part, classes=("cat",))
    with pytest.raises(DatasetError, match="holds one class folder"):
        make_loaders("imagenet", str(single), 4, workers=0)


@pytest.mark.parametrize("case", ["npz_one_class", "corrupt_png", "single_folder"])
def test_the_command_says_it_in_one_line_without_a_traceback(tmp_path, case):
    if case == "npz_one_class":
        data = ["dataset=npz", f"data_dir={npz(tmp_path / 'one.npz', [3] * 12)}"]
    elif case == "corrupt_png":
        corrupt(photos(tmp_path / "p"))
        data = ["dataset=imagefolder", f"data_dir={tmp_path / 'p'}"]
    else:
        data = ["dataset=imagefolder", f"data_dir={photos(tmp_path / 's', classes=('cat',))}"]
    result = subprocess.run([sys.executable, "-m", "supernet.train", "--out", str(tmp_path / "run"), *data,
                             "workers=2", "batch_size=2"], check=False, cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and ("class" in last or "not a readable image" in last)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["config.yaml"]
