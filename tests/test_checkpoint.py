import random

import numpy as np
import pytest
import torch

from supernet.runtime.checkpoint import (
    LATEST,
    PREVIOUS,
    CheckpointError,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)


def state(step):
    torch.manual_seed(step)
    return {"model": {"w": torch.randn(64, 64)}, "step": step, "config": {"lr": 0.1, "names": ["a"]}}


def test_round_trip_keeps_the_previous_checkpoint(tmp_path):
    assert load_checkpoint(tmp_path) is None
    save_checkpoint(tmp_path, state(1))
    save_checkpoint(tmp_path, state(2))
    loaded = load_checkpoint(tmp_path)
    assert loaded["step"] == 2 and torch.equal(loaded["model"]["w"], state(2)["model"]["w"])
    assert loaded["config"] == {"lr": 0.1, "names": ["a"]}
    assert torch.load(tmp_path / PREVIOUS, weights_only=True)["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [PREVIOUS, LATEST]


@pytest.mark.parametrize("damage", ["truncate", "flip_tensor_byte", "empty"])
def test_a_damaged_checkpoint_falls_back_to_the_previous_one(tmp_path, damage, caplog):
    save_checkpoint(tmp_path, state(1))
    save_checkpoint(tmp_path, state(2))
    path = tmp_path / LATEST
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[:len(data) // 2]
    elif damage == "flip_tensor_byte":   # torch.load alone would return the wrong tensor
        data[len(data) // 2] ^= 0xFF
    else:
        data = b""
    path.write_bytes(bytes(data))
    loaded = load_checkpoint(tmp_path)
    assert loaded["step"] == 1 and torch.equal(loaded["model"]["w"], state(1)["model"]["w"])
    assert "unreadable" in caplog.text


def test_no_readable_checkpoint_is_a_clear_error(tmp_path):
    save_checkpoint(tmp_path, state(1))
    (tmp_path / LATEST).write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match=rf"no readable checkpoint in {tmp_path}"):
        load_checkpoint(tmp_path)


def draws():
    return torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)]


def test_rng_state_survives_a_weights_only_checkpoint(tmp_path):
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    np.random.randn()   # leaves a cached gaussian in numpy's state
    save_checkpoint(tmp_path, {"rng": rng_state()})
    expected = draws()
    draws()
    set_rng_state(load_checkpoint(tmp_path)["rng"])
    assert draws() == expected
