"""The "How it works" tab, for teaching the paper: the two stacks drawn from the loaded modules,
the photo's feature maps, the depth templates of coarse 7, the scale-invariant loss with
sliders, and the paper's Table 1 beside this app's measured rows.

It explains the photo of the photo tab (an upload or an example) with the chosen network; the
loss needs ground truth, so it works on the examples only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import torch

from depth import DepthModel
from depth.anatomy import coarse7_components, layer_table, record_layers
from depth.metrics import PAPER
from depth.visualize import figure_pixels

from .diagram import network_diagram
from .examples import Examples
from .feature_maps import CAPTIONS, feature_pictures, picture_grid, template_pictures
from .loss_panel import MAX_SCALE, MIN_SCALE, LossReadout, error_figure, loss_readout, readout_table
from .networks import as_networks, choose
from .numbers import numbers_table, real_frames_note
from .photo import user_errors
from .views import to_working

MAPS = ("coarse + fine", "coarse")  # which prediction the loss scores
NEEDS_TRUTH = ("**The loss needs ground truth**, and an uploaded photo has none: pick one of the examples "
               "in the Photo tab (synthetic rooms, with exact depth) to move the sliders.")


@dataclass(frozen=True)
class Lesson:
    """One photo explained by one network.

    name: the photo's file name; network: the network's name (demo.networks).
    features: (picture, label, caption) per layer shown (demo.feature_maps.feature_pictures).
    maps: {"coarse + fine": ..., "coarse": ...} (H, W) float32 metres at the app's working
    resolution, and truth (H, W) metres (0 = no reading): both only when ground truth is known.
    """

    name: str
    network: str
    features: list[tuple[np.ndarray, str, str]]
    maps: dict[str, np.ndarray] | None
    truth: np.ndarray | None


class Classroom:
    """The tab's work, apart from the page. Pictures of a network that do not depend on the
    photo (its diagram and templates) are made once per network."""

    def __init__(self, models: DepthModel | Mapping[str, DepthModel], examples: Examples) -> None:
        self.networks = as_networks(models)
        self.examples = examples
        self.diagram = lru_cache(maxsize=None)(self._diagram)
        self.templates = lru_cache(maxsize=None)(self._templates)

    def _diagram(self, network: str) -> np.ndarray:
        """(H, W, 3) uint8: the network's two stacks, every box labelled with its real output size."""
        net = choose(self.networks, network).net
        return figure_pixels(network_diagram(layer_table(net)))

    def _templates(self, network: str) -> tuple[np.ndarray, str]:
        """(H, W, 3) uint8: the 8 principal components of coarse 7's templates, each unit's
        template weighted by how much coarse 6 varies it from one example photo to the next; and
        a sentence on how many units of coarse 6 do vary."""
        net = choose(self.networks, network).net
        usage = self._usage(network)
        pictures = picture_grid(template_pictures(*coarse7_components(net, count=8, usage=usage)), columns=4)
        if usage is None:
            return pictures, "The components of all of coarse 7's templates (no example photos to weigh them)."
        live = int((usage > 0).sum())
        return pictures, (f"Units of coarse 6 that change from one example photo to the next: **{live:,} of "
                          f"{len(usage):,}**. Each is one template: with few of them the coarse net can only "
                          "write few layouts, and a component that looks like noise is made of random initial "
                          "weights that training never used.")

    def _usage(self, network: str) -> torch.Tensor | None:
        """(fc_width,) the standard deviation of each coarse-6 unit after its ReLU over the
        examples (a unit that never changes acts as part of the bias), or None without examples."""
        if not self.examples.paths:
            return None
        model = choose(self.networks, network)
        photos = len(self.examples.paths)
        with record_layers(model.net, keep={"coarse 6"}) as recording:  # one forward pass of them all
            model.predict_batch(self.examples.paths, batch_size=photos)
        # the pass's first rows are the photos; any after them their mirror images (flip averaging)
        return recording.activations["coarse 6"][:photos].flatten(1).relu().std(dim=0)

    def explain(self, path: str | Path, network: str | None = None) -> Lesson:
        """Run the network called `network` (None: the default) on the photo at `path`, recording
        its layers."""
        network = network or next(iter(self.networks))
        model = choose(self.networks, network)
        with record_layers(model.net, keep=set(CAPTIONS)) as recording:  # the layers the tab shows
            prediction = model.predict(path)  # the one inference path, hooked
        truth = self.examples.truth(path)
        maps = None
        if truth is not None:
            _, coarse, fine, truth = to_working(prediction.image, prediction.coarse, prediction.fine, truth)
            maps = {"coarse + fine": fine, "coarse": coarse}
        return Lesson(Path(path).name, network, feature_pictures(recording), maps, truth)

    def loss(self, lesson: Lesson, scale: float, lam: float, which: str = MAPS[0]) -> LossReadout:
        """The loss of the lesson's `which` map times `scale`; ValueError without ground truth."""
        if lesson.maps is None or lesson.truth is None:
            raise ValueError("the loss needs ground truth: pick an example photo")
        if which not in MAPS:
            raise ValueError(f"the map must be one of {', '.join(MAPS)}, got {which!r}")
        return loss_readout(lesson.maps[which], lesson.truth, scale, lam)


# ---- the page ------------------------------------------------------------------------------

def classroom_tab(work: Classroom, network: gr.Radio, upload: gr.File, tab: gr.Tab) -> gr.State:
    """Lay out the tab inside `tab` (already entered) and wire its events: it explains the photo
    in `upload` (the photo tab's) with the page's `network` whenever the tab is opened, and
    when either changes while it is open. Returns the State saying whether the tab is open:
    selecting another tab must set it to False.

    Explaining a photo fills (subject Markdown, diagram image, feature-maps image, their captions
    (Markdown list), template-components image, a note on coarse 6's live units, loss note,
    loss table (quantity, value, what it shows) or None, per-pixel error image or None); the
    loss outputs are None, and the note says why, without ground truth. A slider move
    re-scores the kept prediction: (loss note, loss table, error image), no network run."""
    gr.Markdown("## How it works\nThe coarse network sees the **whole** photo and writes a blurry depth map "
                "with fully connected layers; the fine network looks **locally** at the photo again and "
                "sharpens that map. Both learn with a **scale-invariant** loss. Everything below is computed "
                "from the loaded weights, on the photo of the Photo tab.")
    subject = gr.Markdown("Upload a photo or pick an example in the Photo tab, then come back here.",
                          elem_id="lesson-subject")
    gr.Markdown("### 1. The two stacks (the paper's Fig. 1), drawn from the modules as they ran")
    diagram = gr.Image(label="Layers and output sizes (channels × width×height)", show_label=False,
                       interactive=False, elem_id="diagram", buttons=["download", "fullscreen"])
    features = gr.Image(label="This photo inside the networks", show_label=False, interactive=False,
                        elem_id="features", buttons=["download", "fullscreen"])
    feature_notes = gr.Markdown(elem_id="feature-notes")
    gr.Markdown("### 2. What coarse 7 learned\nCoarse 7 writes the 74×55 map as its bias plus a weighted sum of "
                "one template per unit of coarse 6. The principal components of those templates show the "
                "depth layouts the coarse network can express: near floor against far ceiling, left against "
                "right, corners (red: a unit adding it makes that part farther, blue nearer).")
    templates = gr.Image(label="Coarse 7: principal components of its templates", show_label=False,
                         interactive=False, elem_id="templates", buttons=["download", "fullscreen"])
    template_note = gr.Markdown(elem_id="template-note")
    gr.Markdown("### 3. The scale-invariant loss\nd = log(prediction) − log(truth) per pixel; the loss is "
                "mean(d²) − λ·mean(d)². λ = 0 is the MSE of log depth, which punishes a wrong global scale; "
                "λ = 1 forgives any global scale (it is the MSE after multiplying by the best scale e^α); "
                "the paper trains with λ = 0.5. Multiply the prediction by a scale and watch.")
    with gr.Row():
        scale = gr.Slider(MIN_SCALE, MAX_SCALE, value=1.0, step=0.01, label="global scale × prediction",
                          elem_id="loss-scale")
        lam = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="λ", elem_id="loss-lambda")
        which = gr.Radio(list(MAPS), value=MAPS[0], label="prediction", elem_id="loss-map")
        best = gr.Button("Set the best scale e^α", elem_id="loss-best")
    loss_note = gr.Markdown(NEEDS_TRUTH, elem_id="loss-note")
    with gr.Row(equal_height=True):
        values = gr.Dataframe(label="Loss and metrics (depth.loss, depth.metrics)", interactive=False,
                              elem_id="loss-values", wrap=True, column_widths=["34%", "16%", "50%"])
        errors = gr.Image(label="Per-pixel error", interactive=False, elem_id="loss-errors")
    gr.Markdown("### 4. The numbers\nThe paper's Table 1 (real NYU frames, trained on 120K real frames) beside "
                "this app's networks (trained on synthetic rooms only), as the model card (MODEL_CARD.md) measured them "
                f"with `python -m depth evaluate`, every row under the protocol {PAPER.name!r} ({PAPER.description}). "
                "Data: NYU Depth v2's 654 test frames (the paper's only); 300 frames of this project's synthetic "
                "test split (rooms training never saw); the 7 real RGB-D frames of the project's sanity set "
                "(5 NYU, 1 TUM, 1 SUN RGB-D), never trained on. Compare like with like. " + real_frames_note())
    table = numbers_table()
    gr.Dataframe(table.style.format(precision=3), label="Table 1 and this app", interactive=False,
                 elem_id="numbers", wrap=True,
                 column_widths=["24%", "15%", "7%"] + [f"{54 / (len(table.columns) - 3):.1f}%"] * (len(table.columns) - 3))
    lesson = gr.State(None)
    showing = gr.State(False)  # whether this tab is open: only then do changes re-run the network

    loss_outputs = [loss_note, values, errors]

    def explain(path: str | None, name: str | None, *loss_controls: Any) -> tuple:
        if path is None:
            return ("Upload a photo or pick an example in the Photo tab, then come back here.", None, None, "", None,
                    "", NEEDS_TRUTH, None, None, None)
        with user_errors(path):
            current = work.explain(path, name)
            picture, (parts, parts_note) = work.diagram(current.network), work.templates(current.network)
        subject_text = f"Explaining **{current.name}** with the **{current.network}**."
        maps = picture_grid([(image, label) for image, label, _ in current.features])
        notes = "\n".join(f"- **{label}.** {caption}" for _, label, caption in current.features)
        return (subject_text, picture, maps, notes, parts, parts_note, *score(current, *loss_controls), current)

    def score(current: Lesson | None, scale: float, lam: float, which: str) -> tuple:
        if current is None:
            return gr.skip(), gr.skip(), gr.skip()
        if current.maps is None:
            return NEEDS_TRUTH, None, None
        with user_errors():
            readout = work.loss(current, scale, lam, which)
        height, width = current.truth.shape
        note = (f"{current.name}: the {which} map × {readout.scale:.2f}, against its ground truth at {width}×{height} "
                f"(the pixels with depth, less each image's nearest and farthest, as in training). Best scale "
                f"e^α = {readout.best_scale:.3f}; at any scale the λ = 1 error stays {readout.si_error:.4f}.")
        return note, readout_table(readout).style.format({"value": "{:.4f}"}), error_figure(readout)

    def best_scale(current: Lesson | None, which: str) -> Any:
        if current is None or current.maps is None:
            return gr.skip()
        with user_errors():
            readout = work.loss(current, 1.0, 0.5, which)
        return float(np.clip(round(readout.best_scale, 2), MIN_SCALE, MAX_SCALE))

    private = {"api_visibility": "private"}
    lesson_events = {"concurrency_id": "photo", "concurrency_limit": 2, **private}
    explain_io = ([upload, network, scale, lam, which],
                  [subject, diagram, features, feature_notes, templates, template_note, *loss_outputs, lesson])
    tab.select(explain, *explain_io, **lesson_events).then(lambda: True, None, showing, queue=False, **private)
    gr.on([upload.change, network.change], lambda open_, *values: explain(*values) if open_ else
          (gr.skip(),) * len(explain_io[1]), [showing, *explain_io[0]], explain_io[1], **lesson_events)
    gr.on([scale.change, lam.change, which.change], score, [lesson, scale, lam, which], loss_outputs,
          trigger_mode="always_last", concurrency_id="render", concurrency_limit=4, **private)
    best.click(best_scale, [lesson, which], scale, queue=False, **private)
    return showing
