import math

import torch

from depth import bench
from depth.predict import DepthModel

CPU = torch.device("cpu")


def test_median_seconds_times_the_work_after_warm_up():
    calls = []
    seconds = bench.median_seconds(lambda: calls.append(1), CPU, repeats=3, warmup=2)
    assert len(calls) == 5 and 0 <= seconds < 1.0  # appending to a list: far under a second, even when busy


def test_forward_vs_predict_reports_both_and_their_ratio(small_net):
    speed = bench.forward_vs_predict(DepthModel(small_net, device="cpu", info={"trained": True}), repeats=2)
    # both positive; not their order: on a busy machine two timings of a small net can swap
    assert speed["forward_ms"] > 0 and speed["predict_ms"] > 0
    assert math.isclose(speed["ratio"], speed["predict_ms"] / speed["forward_ms"])


def test_training_and_renderer_speeds_are_positive(small_net):
    assert bench.forward_throughput(small_net, CPU, batch_size=2, repeats=1) > 0
    assert bench.model_alone("fine", batch_size=2, steps=1, device=CPU, compile=False, fc_width=16, repeats=1) > 0
    for bf16 in (False, True):
        assert bench.model_alone("coarse", batch_size=2, steps=1, device=CPU, compile=False, fc_width=16, repeats=1,
                                 backbone="efficientnet-lite0", bf16=bf16) > 0
        assert bench.model_alone("fine", batch_size=2, steps=1, device=CPU, compile=False, fc_width=16, repeats=1,
                                 backbone="efficientnet-lite0", bf16=bf16, fine_reads_backbone=True) > 0
    speed = bench.renderer_speed(CPU, batch_size=1, repeats=1)
    assert speed["fps"] > 0 and speed["first_call_s"] > 0


def test_renderer_stages_add_up_to_the_total():
    stages = bench.renderer_stages(CPU, frames=1)
    assert set(stages) == {"trace", "texture", "visibility", "shade", "camera", "kinect", "scenes and the rest",
                           "total"}
    assert all(ms > 0 for ms in stages.values())
    parts = sum(ms for name, ms in stages.items() if name != "total")
    assert math.isclose(parts, stages["total"], rel_tol=1e-6)


def test_bench_py_is_the_one_entry_and_rejects_bad_options(capsys):
    import re
    import sys
    from pathlib import Path

    import pytest

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench import main

    assert main(["render", "--frames", "-3", "--device", "cpu"]) == 2  # --device after the command too
    assert "frames must be at least 1" in capsys.readouterr().err
    assert main(["--device", "nonsense"]) == 2
    assert "unknown device 'nonsense'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "{train,render,app}" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    train_help = " ".join(capsys.readouterr().out.split())
    for option in ("--batch-size", "--steps", "--compile", "--data", "--data-path", "--frames"):
        assert re.search(rf"{option}(?: [A-Z_]+|, --no-[a-z-]+)? [a-z]", train_help), option  # each has a help text
