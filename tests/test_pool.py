"""TensorPool: frames kept in a folder are mapped by later pools instead of being built again."""

import pytest
import torch

from depth.data.pool import TensorPool
from depth.synthetic import SyntheticFrames


class CountingSource:
    """A FrameSource that records every frame it is asked for."""

    def __init__(self, frames: SyntheticFrames) -> None:
        self.frames_source, self.asked = frames, 0

    def __len__(self) -> int:
        return len(self.frames_source)

    def frames(self, indices):
        self.asked += len(indices)
        return self.frames_source.frames(indices)


@pytest.fixture(scope="module")
def source():
    return SyntheticFrames(seed=3, device="cpu", split="val", length=6)


def test_a_kept_pool_is_mapped_by_the_next_pool_of_the_same_frames(tmp_path, source):
    key = {"data": "synthetic", "split": "val"}
    first_source = CountingSource(source)
    first = TensorPool.from_source(first_source, 6, "cpu", batch=4, keep=tmp_path / "pool", key=key)
    assert first_source.asked == 6 and len(first) == 6 and (tmp_path / "pool" / "pool.json").is_file()

    again_source = CountingSource(source)
    again = TensorPool.from_source(again_source, 4, "cpu", keep=tmp_path / "pool", key=key)
    assert again_source.asked == 0  # mapped, not rendered
    assert len(again) == 4
    images, depth = again.frames(torch.arange(4))
    expected_images, expected_depth = source.frames(torch.arange(4))
    assert torch.equal(images, expected_images)
    assert torch.equal(depth, expected_depth.half().float())


def test_a_kept_pool_of_other_frames_or_too_few_is_an_error(tmp_path, source):
    TensorPool.from_source(source, 2, "cpu", keep=tmp_path, key={"split": "val"})
    with pytest.raises(ValueError, match="keeps the frames of"):
        TensorPool.kept(tmp_path, {"split": "train"}, 2, "cpu")
    with pytest.raises(ValueError, match="keeps 2 frames, fewer than the 5"):
        TensorPool.kept(tmp_path, {"split": "val"}, 5, "cpu")
    (tmp_path / "depth.npy").write_bytes(b"not an array")
    with pytest.raises(ValueError, match="cannot be read"):
        TensorPool.kept(tmp_path, {"split": "val"}, 2, "cpu")


def test_an_unfinished_pool_folder_holds_no_pool(tmp_path):
    (tmp_path / "images.npy").write_bytes(b"")  # a build that was killed: no pool.json yet
    assert TensorPool.kept(tmp_path, {}, 1, "cpu") is None


def test_a_pool_too_big_for_memory_or_disk_is_refused_before_allocating(tmp_path, monkeypatch):
    from depth.data import pool

    monkeypatch.setattr(pool, "_available_ram", lambda: 10 * pool.FRAME_BYTES)
    message = r"a pool of 120,000 frames needs 42.9 GiB .* lower --train-frames \(at most about 9 here\)"
    with pytest.raises(ValueError, match=message):
        pool.check_pool_fits(120_000, "cpu")
    pool.check_pool_fits(9, "cpu")
    with pytest.raises(ValueError, match="free disk space at"):
        pool.check_pool_fits(10**9, "cpu", keep=tmp_path / "new" / "pool")  # 384 TB: no disk has it


def test_train_refuses_a_pool_that_cannot_fit_before_writing_anything(tmp_path, monkeypatch, capsys):
    from depth.__main__ import main
    from depth.data import pool

    monkeypatch.setattr(pool, "_available_ram", lambda: 2**30)
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--device", "cpu"]) == 2  # the default: 120,000 frames
    err = capsys.readouterr().err
    assert "needs 42.9 GiB" in err and "--train-frames" in err and "Traceback" not in err
    assert not out.exists()


class KilledSource(CountingSource):
    """Stops the build (as a kill would) once `limit` frames have been rendered."""

    def __init__(self, frames: SyntheticFrames, limit: int) -> None:
        super().__init__(frames)
        self.limit = limit

    def frames(self, indices):
        if self.asked >= self.limit:
            raise KeyboardInterrupt
        return super().frames(indices)


def test_a_killed_build_resumes_where_it_stopped_and_gives_the_same_frames(tmp_path, source):
    key = {"data": "synthetic", "split": "val"}
    killed = KilledSource(source, limit=4)
    with pytest.raises(KeyboardInterrupt):
        TensorPool.from_source(killed, 6, "cpu", batch=2, keep=tmp_path / "pool", key=key)
    assert not (tmp_path / "pool" / "pool.json").exists()
    assert TensorPool.kept(tmp_path / "pool", key, 6, "cpu") is None  # unfinished: not a pool yet

    resumed = CountingSource(source)
    pool = TensorPool.from_source(resumed, 6, "cpu", batch=2, keep=tmp_path / "pool", key=key)
    assert resumed.asked == 2  # only the frames the killed build had not written
    images, depth = pool.frames(torch.arange(6))
    expected_images, expected_depth = source.frames(torch.arange(6))
    assert torch.equal(images, expected_images) and torch.equal(depth, expected_depth.half().float())
