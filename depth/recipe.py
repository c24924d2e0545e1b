"""Recipes: every shipped network comes from one TOML file in recipes/ and one command,

    python -m depth train --recipe default --out runs/default

A recipe is a [train] table of TrainConfig fields that its training stages share, then its
stages in order, each a [[stage]] with a name, a kind (depth/stages.py) and its own settings:

    description = "what the network is"
    [train]
    data = "synthetic"
    train_frames = 20000
    [[stage]]
    name = "coarse"
    kind = "coarse"
    coarse_samples = 56000

The run folder holds one folder per stage (01-pool, 02-coarse, ...), each marked done.json
when finished, and at the end model.safetensors (with its parts): the last stage's network,
its info naming the recipe, the sha256 of its file and the commit it ran at. Running the same
command again skips the finished stages and resumes the current one where it stopped
(depth.train resumes exactly), so a killed run ends with the same weights as one never killed.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import platform
import shutil
import subprocess
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .checkpoint import checkpoint_files, load_info, replace_info
from .stages import KINDS, TRAINING_KINDS, Context, Estimate
from .train import TrainConfig, bf16_pays, check_options

REPOSITORY = Path(__file__).resolve().parent.parent
RECIPES = REPOSITORY / "recipes"
# Set by the command line, never by a recipe: where the run goes, and how this machine runs it.
RUN_FIELDS = ("out", "pool_file", "init", "device", "compile")
TRAIN_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name not in RUN_FIELDS)
# Counts that --scale multiplies: frames, and samples (kept whole batches)
SCALED_FRAMES = ("train_frames", "val_frames", "baseline_frames", "frames")
SCALED_SAMPLES = ("coarse_samples", "fine_samples")
# and intervals, at least this many batches: a checkpoint costs the same at any scale
SCALED_INTERVALS, MIN_INTERVAL_BATCHES = ("val_every", "checkpoint_every"), 4


class RecipeError(ValueError):
    """A recipe file that cannot be run as written, or a run folder that is not its run."""


@dataclass(frozen=True)
class Stage:
    name: str
    kind: str
    step: Any  # the kind's object (depth.stages): its options, or its TrainConfig for training kinds


@dataclass(frozen=True)
class Recipe:
    name: str
    path: Path
    sha256: str  # of the file's bytes
    description: str
    train: TrainConfig  # [train] as written (scaled)
    stages: tuple[Stage, ...]
    scale: float = 1.0


def recipe_path(name: str) -> Path:
    """recipes/NAME.toml for a bare name, else `name` as a path. RecipeError if there is none."""
    path = Path(name) if name.endswith(".toml") or "/" in name else RECIPES / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in RECIPES.glob("*.toml")))
        raise RecipeError(f"no recipe {name!r} ({path} is not a file); the recipes are: {known}")
    return path


def load_recipe(name: str, scale: float = 1.0) -> Recipe:
    """The recipe `name` (see recipe_path), every frame and sample count times `scale`.

    Raises RecipeError, in one line naming the file and the stage, for TOML it cannot parse, an
    unknown key, stage kind or field, a value of the wrong type, or settings depth.train rejects.
    """
    path = recipe_path(name)
    if not (scale > 0):
        raise RecipeError(f"--scale must be a positive number, got {scale}")
    raw = path.read_bytes()
    try:
        table = tomllib.loads(raw.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise RecipeError(f"{path}: not valid TOML: {error}") from None
    _unknown(path, "the recipe", table, ("description", "train", "stage"))
    base = _scaled(_typed(path, "[train]", table.get("train", {}), TRAIN_FIELDS), scale, None)
    shared = TrainConfig(**base)
    stages, names = [], set()
    for index, settings in enumerate(table.get("stage", []), start=1):
        where = f"stage {index}" + (f" {settings['name']!r}" if isinstance(settings, dict) and "name" in settings else "")
        if not isinstance(settings, dict) or not isinstance(settings.get("name"), str) or "kind" not in settings:
            raise RecipeError(f"{path}: {where} needs a name and a kind")
        stage_name, kind = settings["name"], settings["kind"]
        if stage_name in names or not stage_name.replace("-", "").isalnum():
            raise RecipeError(f"{path}: {where}: stage names must be unique words (letters, digits, -)")
        names.add(stage_name)
        if kind not in KINDS:
            raise RecipeError(f"{path}: {where}: unknown kind {kind!r}; the kinds are {', '.join(KINDS)}")
        options = {k: v for k, v in settings.items() if k not in ("name", "kind")}
        stages.append(Stage(stage_name, kind, _stage_step(path, where, kind, options, base, scale)))
    if not stages or not KINDS[stages[-1].kind].writes_network:
        raise RecipeError(f"{path}: the last stage must write a network (a coarse, fine, export or calibrate stage)")
    if stages and (first := next((s for s in stages if KINDS[s.kind].writes_network), None)) and first.kind != "coarse":
        raise RecipeError(f"{path}: stage {first.name!r} ({first.kind}) needs a network before it: start with a coarse stage")
    description = table.get("description", "")
    return Recipe(path.stem, path, hashlib.sha256(raw).hexdigest(), str(description), shared, tuple(stages), scale)


def _stage_step(path: Path, where: str, kind: str, options: dict[str, Any], base: dict[str, Any], scale: float):
    step_type = KINDS[kind]
    if kind in TRAINING_KINDS:
        samples = f"{kind}_samples"
        other = "fine_samples" if kind == "coarse" else "coarse_samples"
        if other in options:
            raise RecipeError(f"{path}: {where}: a {kind} stage trains the {kind} net only; {other} belongs to a "
                              f"{other.split('_')[0]} stage")
        if samples not in options:
            raise RecipeError(f"{path}: {where}: a {kind} stage must say how long it trains ({samples})")
        fields = base | _scaled(_typed(path, where, options, TRAIN_FIELDS), scale, base.get("batch_size"))
        fields[other] = 0
        config = TrainConfig(**fields)
        try:
            check_options(dataclasses.replace(config, init="previous stage" if kind == "fine" else ""))
        except ValueError as error:
            raise RecipeError(f"{path}: {where}: {error}") from None
        return step_type(config)
    fields = _scaled(_typed(path, where, options, step_type.OPTIONS, step_type), scale, None)
    step = step_type(**fields)
    if problems := step.check() if hasattr(step, "check") else []:
        raise RecipeError(f"{path}: {where}: {'; '.join(problems)}")
    return step


def _unknown(path: Path, where: str, table: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            if key in RUN_FIELDS:
                hint = " (set by the command line, never by a recipe)"
            raise RecipeError(f"{path}: {where}: unknown key {key!r}{hint}")


def _typed(path: Path, where: str, table: Any, allowed: tuple[str, ...], owner: type = TrainConfig) -> dict[str, Any]:
    """`table`'s keys checked against `allowed` and its values against `owner`'s field types."""
    if not isinstance(table, dict):
        raise RecipeError(f"{path}: {where} must be a table of settings")
    _unknown(path, where, table, allowed)
    defaults = {f.name: f.default for f in dataclasses.fields(owner)}
    typed = {}
    for key, value in table.items():
        default = defaults[key]
        if isinstance(default, tuple):
            ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
            value = tuple(value) if ok else value
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            value = float(value) if ok else value
        else:
            ok = type(value) is type(default)
        if not ok:
            wanted = "a list of names" if isinstance(default, tuple) else type(default).__name__
            raise RecipeError(f"{path}: {where}: {key} must be {wanted}, got {value!r}")
        typed[key] = value
    return typed


def _scaled(fields: dict[str, Any], scale: float, batch: int | None) -> dict[str, Any]:
    """Frame counts times `scale` (at least 1), sample counts too in whole batches (at least one),
    and validation and checkpoint intervals (at least MIN_INTERVAL_BATCHES)."""
    if scale == 1.0:
        return fields
    batch = fields.get("batch_size", batch or TrainConfig.batch_size)
    scaled = dict(fields)
    for key, value in fields.items():
        if key in SCALED_FRAMES and value:
            scaled[key] = max(1, round(value * scale))
        elif key in SCALED_SAMPLES and value:
            scaled[key] = max(1, round(value * scale / batch)) * batch
        elif key in SCALED_INTERVALS:
            scaled[key] = max(MIN_INTERVAL_BATCHES, round(value * scale / batch)) * batch
    return scaled


def plan(recipe: Recipe, out: Path, pools: Path, device: str = "", compile: bool = False) -> list[tuple[Stage, Estimate | None]]:
    """Each stage with an estimate of its work and time on this machine (None where the run in
    `out` has finished it), from a few measured steps: what --dry-run prints."""
    ctx = _context(recipe, pools, device, compile)
    return [(stage, None if _done(out, index, stage) else stage.step.measure(ctx))
            for index, stage in enumerate(recipe.stages, start=1)]


def format_plan(recipe: Recipe, rows: list[tuple[Stage, Estimate | None]], out: Path) -> str:
    lines = [f"recipe {recipe.name} ({recipe.path}, sha256 {recipe.sha256[:12]}), scale {recipe.scale:g}, "
             f"run folder {out}", f"{'stage':<14}{'kind':<11}{'work':<52}{'speed here':<18}estimate"]
    total = 0.0
    for stage, estimate in rows:
        if estimate is None:
            lines.append(f"{stage.name:<14}{stage.kind:<11}{'done':<52}")
            continue
        total += estimate.seconds
        lines.append(f"{stage.name:<14}{stage.kind:<11}{estimate.work:<52}{estimate.speed:<18}"
                     f"{_minutes(estimate.seconds)}")
    lines.append(f"total: about {_minutes(total)} on this machine ({machine()})")
    return "\n".join(lines)


def run_recipe(recipe: Recipe, out: Path, pools: Path, device: str = "", compile: bool = False) -> Path:
    """Run (or resume) `recipe` in the folder `out`; returns out/model.safetensors."""
    out.mkdir(parents=True, exist_ok=True)
    _claim(out, recipe)
    ctx = _context(recipe, pools, device, compile)
    previous: Path | None = None
    for index, stage in enumerate(recipe.stages, start=1):
        folder = _folder(out, index, stage)
        if (done := _done(out, index, stage)) is not None:
            previous = out / done["output"] if done["output"] else previous
            continue
        folder.mkdir(exist_ok=True)
        _history(out, event="start", stage=stage.name)
        start = time.time()
        previous = stage.step.run(ctx, folder, previous)
        record = {"stage": stage.name, "kind": stage.kind, "output": str(previous.relative_to(out)) if previous else "",
                  "seconds": round(time.time() - start, 1), "machine": machine(), "commit": commit()}
        (folder / "done.json").write_text(json.dumps(record, indent=2) + "\n")
        _history(out, event="done", stage=stage.name)
    return _finish(recipe, out, previous)


def _context(recipe: Recipe, pools: Path, device: str, compile: bool) -> Context:
    return Context(dataclasses.replace(recipe.train, device=device, compile=compile), pools, recipe.scale < 1)


def _folder(out: Path, index: int, stage: Stage) -> Path:
    return out / f"{index:02d}-{stage.name}"


def _done(out: Path, index: int, stage: Stage) -> dict[str, Any] | None:
    marker = _folder(out, index, stage) / "done.json"
    return json.loads(marker.read_text()) if marker.is_file() else None


def _claim(out: Path, recipe: Recipe) -> None:
    """Mark `out` as this recipe's run, or check that it is: a run resumes only unchanged."""
    mark = out / "recipe.json"
    ours = {"recipe": recipe.name, "sha256": recipe.sha256, "scale": recipe.scale}
    if mark.is_file():
        theirs = json.loads(mark.read_text())
        if {k: theirs.get(k) for k in ours} != ours:
            raise RecipeError(f"{out} holds a run of recipe {theirs.get('recipe')!r} (sha256 "
                              f"{str(theirs.get('sha256'))[:12]}, scale {theirs.get('scale')}), not of this one "
                              f"({recipe.sha256[:12]}, scale {recipe.scale:g}): resume it unchanged or choose another --out")
        return
    mark.write_text(json.dumps(ours | {"commit": commit()}, indent=2) + "\n")
    shutil.copyfile(recipe.path, out / "recipe.toml")


def _finish(recipe: Recipe, out: Path, last: Path | None) -> Path:
    """out/model.safetensors: the last stage's files, its info naming the recipe and its run."""
    assert last is not None  # load_recipe requires a last stage that writes a network
    final = out / "model.safetensors"
    info = load_info(last)
    stages = []
    for index, stage in enumerate(recipe.stages, start=1):
        done = _done(out, index, stage) or {}
        stages.append({"name": stage.name, "kind": stage.kind, "machine": done.get("machine", ""),
                       "minutes": round(done.get("seconds", 0) / 60, 1)})
    first_commit = json.loads((out / "recipe.json").read_text()).get("commit", "")
    info["recipe"] = {"name": recipe.name, "file": _shown(recipe.path), "sha256": recipe.sha256,
                      "scale": recipe.scale, "commit": first_commit, "stages": stages}
    info["trained_on"] = _trained_on(recipe)
    if final.is_file() and load_info(final) == info:
        return final  # finished before: leave the files as they are
    for file in checkpoint_files(last):
        shutil.copyfile(file, out / file.name if file != last else final)
    replace_info(final, info)
    return final


def _trained_on(recipe: Recipe) -> str:
    cfg = recipe.train
    frames = f"{cfg.train_frames:,} frames of the {cfg.train_split} split" if cfg.train_frames else f"the {cfg.train_split} split"
    data = f"synthetic rooms (depth.synthetic: {frames})" if cfg.data == "synthetic" else f"{cfg.data} ({frames})"
    samples = [f"{stage.step.config.coarse_samples or stage.step.config.fine_samples:,} {stage.kind}"
               for stage in recipe.stages if stage.kind in TRAINING_KINDS]
    return f"{data}, {' + '.join(samples)} samples (recipe {recipe.name})"


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPOSITORY))
    except ValueError:
        return str(path)


def _history(out: Path, **row: Any) -> None:
    with open(out / "history.jsonl", "a") as log:
        log.write(json.dumps(row | {"time": round(time.time()), "machine": machine()}) + "\n")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 60 else "< 1 min"


def machine() -> str:
    """This machine's CPU and whether training uses bf16 on it, e.g. 'Intel Xeon ..., 2 threads, float32'."""
    import torch

    name = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    precision = "bf16" if bf16_pays(torch.device("cpu")) else "float32"
    return f"{name}, {torch.get_num_threads()} threads, {precision}"


def commit() -> str:
    """The git commit of this checkout ('-dirty' when files differ from it), or '' outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPOSITORY, capture_output=True, text=True, check=True)
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPOSITORY,
                                capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return ""
    return head.stdout.strip() + ("-dirty" if status.stdout.strip() else "")
