"""The paper's Table 1 beside this project's measured rows (MODEL_CARD.md), each row
naming the data and protocol it was measured on.

The measured rows are the JSON reports `python -m depth evaluate --json` wrote for the shipped
weights (flip averaging on, the maps `predict` gives), kept in assets/reports/NETWORK/; a missing
report leaves its rows out.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from depth.evaluate import PAPER_TABLE1
from depth.metrics import METRIC_NAMES, PAPER

from .photo import METRIC_LABELS

REPORTS = Path(__file__).resolve().parent.parent / "assets" / "reports"
PAPER_DATA = "NYU v2 test, 654 real"
SYNTHETIC_TEST = "synthetic test, 300"
REAL_FRAMES = "7 real RGB-D frames"
# (network as the app names it, data, the report of the shipped weights on that data)
MEASURED = (
    ("ImageNet-pretrained coarse", SYNTHETIC_TEST, REPORTS / "default" / "synthetic-test.json"),
    ("ImageNet-pretrained coarse", REAL_FRAMES, REPORTS / "default" / "real-rgbd.json"),
    ("paper network", SYNTHETIC_TEST, REPORTS / "paper" / "synthetic-test.json"),
    ("paper network", REAL_FRAMES, REPORTS / "paper" / "real-rgbd.json"),
)
ROWS_SHOWN = ("coarse", "coarse + fine")  # of each report


def numbers_table(measured: tuple[tuple[str, str, Path], ...] = MEASURED) -> pd.DataFrame:
    """Columns "model", "data", "protocol" (its name: depth.metrics.PROTOCOLS) and the metrics
    (the paper's Table 1 order, SI log last, no log10: the paper has none); the paper's rows
    first. This app's networks never trained on the data they are scored on."""
    metrics = [name for name in METRIC_NAMES if name != "log10"]
    columns = ["model", "data", "protocol"] + [METRIC_LABELS[name] for name in metrics]
    rows = [[f"Eigen et al.: {name.replace(' (paper)', '')}", PAPER_DATA, PAPER.name,
             *values] for name, values in PAPER_TABLE1.items()]
    for network, data, path in measured:
        if not path.is_file():
            continue
        report = json.loads(path.read_text())
        for row in ROWS_SHOWN:
            values = report["results"][row]
            rows.append([f"{network}: {row}", data, report["protocol"], *(values[name] for name in metrics)])
    return pd.DataFrame(rows, columns=columns)


def real_frames_note(measured: tuple[tuple[str, str, Path], ...] = MEASURED) -> str:
    """How far the real-frame rows could move with other frames: a sentence with the standard
    error of each network's coarse + fine SI log over the real frames ('' where the reports
    have none, as those written before 2026-12-05)."""
    errors = []
    for network, data, path in measured:
        if data != REAL_FRAMES or not path.is_file():
            continue
        error = json.loads(path.read_text()).get("standard_error", {}).get("coarse + fine", {}).get("si_log")
        if error is not None:
            errors.append(f"±{error:.3f} ({network})")
    if not errors:
        return ""
    return ("Seven real frames are few: with other rooms of the same kind, the SI log of a coarse + fine row "
            f"on them could move by about its standard error over the frames, {', '.join(errors)}.")
