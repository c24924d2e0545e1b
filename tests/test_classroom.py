"""The "How it works" tab: its work (Classroom, the loss readout, the numbers) and its page
handlers return what they document, and every loss value is depth.loss's own."""

import json
import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from demo.classroom import MAPS, NEEDS_TRUTH, Classroom  # noqa: E402
from demo.examples import Examples  # noqa: E402
from demo.feature_maps import picture_grid, template_pictures  # noqa: E402
from demo.loss_panel import error_figure, loss_readout, readout_table  # noqa: E402
from demo.networks import network_name  # noqa: E402
from demo.numbers import MEASURED, REAL_FRAMES, numbers_table, real_frames_note  # noqa: E402
from demo.ui import build_app  # noqa: E402
from depth.evaluate import PAPER_TABLE1  # noqa: E402
from depth.loss import paper_valid_mask, scale_invariant_loss  # noqa: E402
from depth.metrics import compute_metrics  # noqa: E402

EXAMPLES = Examples()


@pytest.fixture
def model(small_model):
    return small_model


@pytest.fixture
def classroom(model):
    return Classroom(model, EXAMPLES)


def test_an_example_is_explained_with_its_ground_truth(classroom, model):
    example = EXAMPLES.paths[0]
    lesson = classroom.explain(example)
    assert lesson.name == example.name and lesson.network == "paper network"
    prediction = model.predict(example)
    np.testing.assert_array_equal(lesson.maps["coarse + fine"], prediction.fine)  # 640x480: working size
    np.testing.assert_array_equal(lesson.maps["coarse"], prediction.coarse)
    np.testing.assert_array_equal(lesson.truth, EXAMPLES.truth(example))
    labels = [label for _, label, _ in lesson.features]
    assert labels == ["coarse 1: 96 × 37×27", "coarse 5: 256 × 8×6", "coarse 7: 1 × 74×55", "fine 1: 63 × 74×55",
                      "fine 3: 1 × 74×55"]
    assert "1 map of 74×55" in lesson.features[2][2]
    for picture, _, caption in lesson.features:
        assert picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[2] == 3 and caption


def test_an_upload_is_explained_but_its_loss_needs_ground_truth(classroom, tmp_path, photo):
    Image.fromarray(photo).save(tmp_path / "room.png")
    lesson = classroom.explain(tmp_path / "room.png")
    assert lesson.maps is None and lesson.truth is None and lesson.features
    with pytest.raises(ValueError, match="needs ground truth"):
        classroom.loss(lesson, 1.0, 0.5)


def test_diagram_and_templates_are_pictures_made_once(classroom):
    diagram = classroom.diagram("paper network")
    assert diagram.dtype == np.uint8 and diagram.shape[2] == 3 and diagram.shape[1] >= 1000
    assert classroom.diagram("paper network") is diagram
    templates, note = classroom.templates("paper network")
    assert templates.dtype == np.uint8 and templates.shape[2] == 3
    assert " of 32**" in note  # the conftest network's coarse 6 has 32 units
    with pytest.raises(ValueError, match="unknown network"):
        classroom.diagram("no such network")


def test_scaling_leaves_the_lambda_1_error_and_changes_the_mse(classroom):
    lesson = classroom.explain(EXAMPLES.paths[1])
    readouts = [classroom.loss(lesson, scale, 0.3) for scale in (0.5, 1.0, 2.0)]
    assert np.ptp([r.si_error for r in readouts]) < 1e-5 * readouts[0].si_error
    assert len({round(r.mse_log, 4) for r in readouts}) == 3
    assert readouts[0].best_scale == readouts[2].best_scale  # the network's own prediction's
    best = classroom.loss(lesson, readouts[0].best_scale, 0.5)
    assert best.mse_log == pytest.approx(best.si_error, rel=1e-3)  # the best scale aligns it
    assert all(r.mse_log >= best.mse_log for r in readouts)


def test_the_readout_is_depth_loss_and_depth_metrics(classroom):
    lesson = classroom.explain(EXAMPLES.paths[2])
    readout = classroom.loss(lesson, 1.7, 0.25, "coarse")
    prediction, truth = lesson.maps["coarse"] * np.float32(1.7), lesson.truth
    log_prediction = torch.from_numpy(np.log(prediction))[None]
    target = torch.from_numpy(truth)[None]
    mask = paper_valid_mask(target)
    for lam, value in ((0.0, readout.mse_log), (1.0, readout.si_error), (0.5, readout.training_loss),
                       (0.25, readout.chosen_loss)):
        assert value == pytest.approx(float(scale_invariant_loss(log_prediction, target, mask, lam)), rel=1e-5)
    assert readout.metrics == pytest.approx(compute_metrics(prediction, truth), rel=1e-5)
    table = readout_table(readout)
    assert list(table.columns) == ["quantity", "value", "what it shows"] and len(table) == 8
    assert table.loc[table.quantity == "loss at λ = 0.25", "value"].item() == readout.chosen_loss
    assert np.isnan(readout.error[~mask[0].numpy()]).all() and np.isfinite(readout.error[mask[0].numpy()]).all()
    picture = error_figure(readout)
    assert picture.dtype == np.uint8 and picture.shape[2] == 3


@pytest.mark.parametrize("scale, lam, message", [(0.1, 0.5, "scale must be"), (1.0, 1.5, "λ must be"),
                                                 (float("nan"), 0.5, "scale must be")])
def test_senseless_sliders_are_refused(classroom, scale, lam, message):
    lesson = classroom.explain(EXAMPLES.paths[0])
    with pytest.raises(ValueError, match=message):
        classroom.loss(lesson, scale, lam)
    with pytest.raises(ValueError, match="the map must be"):
        classroom.loss(lesson, 1.0, 0.5, "both")


def test_template_pictures_are_labelled_by_their_share():
    components = np.random.default_rng(0).normal(size=(3, 55, 74))
    pictures = template_pictures(components, np.array([0.5, 0.25, 0.125]))
    assert [label for _, label in pictures] == ["component 1: 50% of the variance", "component 2: 25% of the variance",
                                                "component 3: 12% of the variance"]
    assert all(picture.shape[2] == 3 and picture.shape[1] >= 74 for picture, _ in pictures)
    grid = picture_grid(pictures, columns=2)
    assert grid.dtype == np.uint8 and grid.shape[1] == 1300


def test_the_numbers_put_the_paper_beside_the_measured_rows():
    table = numbers_table()
    assert list(table.columns[:3]) == ["model", "data", "protocol"] and "SI log" in table.columns
    paper = table[table.model.str.startswith("Eigen et al.: ")]
    assert len(paper) == len(PAPER_TABLE1) and (paper.data == "NYU v2 test, 654 real").all()
    assert paper.iloc[3]["SI log"] == PAPER_TABLE1["coarse + fine (paper)"][-1]
    network, data, path = MEASURED[0]
    report = json.loads(path.read_text())
    row = table[(table.model == f"{network}: coarse + fine") & (table.data == data)]
    assert row["SI log"].item() == report["results"]["coarse + fine"]["si_log"]
    assert (table.protocol == "paper").all() and report["protocol"] == "paper"
    assert len(table) == len(PAPER_TABLE1) + 2 * len(MEASURED)


def test_the_real_frames_note_gives_each_network_s_standard_error():
    note = real_frames_note()
    for network, data, path in MEASURED:
        if data == REAL_FRAMES:
            error = json.loads(path.read_text())["standard_error"]["coarse + fine"]["si_log"]
            assert f"±{error:.3f} ({network})" in note
    assert real_frames_note(()) == ""  # no report, no claim


def test_what_to_expect_quotes_the_default_s_real_frame_errors():
    from demo.photo import LIMITS

    network, data, path = MEASURED[1]
    assert (network, data) == ("ImageNet-pretrained coarse", REAL_FRAMES)
    default = json.loads(path.read_text())["results"]["coarse + fine"]
    assert f"off by {round(100 * default['abs_rel'])}% on average" in LIMITS
    assert f"{round(100 * (1 - default['delta1']))}% of pixels' by more than a quarter" in LIMITS


def test_the_measured_rows_are_of_the_weights_that_ship():
    from depth import load_model
    from depth.predict import SHIPPED_WEIGHTS

    shipped = {network_name(model): model.describe()
               for model in (load_model(path, device="cpu") for path in SHIPPED_WEIGHTS)}
    for network, _, path in MEASURED:
        assert json.loads(path.read_text())["weights"] == shipped[network], path


def _handler(app: gr.Blocks, name: str):
    return next(fn.fn for fn in app.fns.values() if fn.name == name)


def test_the_tab_s_handlers_return_their_outputs(model, tmp_path, photo):
    app = build_app(model)
    explain, score, best_scale = (_handler(app, name) for name in ("explain", "score", "best_scale"))
    example = str(EXAMPLES.paths[0])
    subject, diagram, features, notes, templates, template_note, note, values, errors, lesson = explain(
        example, None, 1.0, 0.5, MAPS[0])
    assert EXAMPLES.paths[0].name in subject and "paper network" in subject
    assert diagram.dtype == np.uint8 and features.dtype == np.uint8 and templates.dtype == np.uint8
    assert "of 32" in template_note
    assert notes.count("\n- ") == 4 and "**coarse 1: 96 × 37×27.**" in notes
    assert "λ = 1 error stays" in note and errors.dtype == np.uint8
    shown = values.data if hasattr(values, "data") else values  # a pandas Styler for the page
    assert isinstance(shown, pd.DataFrame) and len(shown) == 8
    note2, values2, _ = score(lesson, 2.0, 0.5, MAPS[0])
    before, after = (v.data.set_index("quantity")["value"] for v in (values, values2))
    assert before["scale-invariant error (λ = 1)"] == pytest.approx(after["scale-invariant error (λ = 1)"], rel=1e-5)
    assert before["MSE of log depth (λ = 0)"] != after["MSE of log depth (λ = 0)"]
    assert best_scale(lesson, MAPS[0]) == pytest.approx(round(min(max(_best_scale_of(lesson), 0.25), 4.0), 2))

    Image.fromarray(photo).save(tmp_path / "room.png")
    *_, note, values, errors, upload_lesson = explain(str(tmp_path / "room.png"), None, 1.0, 0.5, MAPS[0])
    assert note == NEEDS_TRUTH and values is None and errors is None and upload_lesson.maps is None
    assert score(upload_lesson, 1.5, 0.5, MAPS[0]) == (NEEDS_TRUTH, None, None)
    assert explain(None, None, 1.0, 0.5, MAPS[0])[1] is None  # no photo yet
    with pytest.raises(gr.Error, match="not an image file"):
        (tmp_path / "bad.jpg").write_text("not a photo")
        explain(str(tmp_path / "bad.jpg"), None, 1.0, 0.5, MAPS[0])


def _best_scale_of(lesson) -> float:
    return loss_readout(lesson.maps[MAPS[0]], lesson.truth, 1.0, 0.5).best_scale
