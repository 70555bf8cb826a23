"""Checkpoints: model and optimizer through ``torch.distributed.checkpoint`` (sharded per rank, loadable with
another world size), plus every rank's RNG states, the trainer state (step, data position, metrics, config) and
checksums of every file.

A checkpoint is written into ``.step-NNNNNNNN.tmp`` and renamed to ``step-NNNNNNNN`` only when complete, so a
kill leaves either a whole checkpoint or none; ``latest`` names the newest. Loading verifies the checksums first:
a corrupt checkpoint is a one-line error, never a half-loaded model.
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.distributed.checkpoint as dcp
import xxhash
from torch import nn
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

from gniazdo.errors import UserError
from gniazdo.fileio import write_json_atomic, write_text_atomic
from gniazdo.train.parallel import Dist, barrier, broadcast_object

STATE = "trainer_state.json"
CHECKSUMS = "checksums.json"


@contextlib.contextmanager
def single_process_ok() -> Iterator[None]:
    """DCP warns that it assumes one process when no process group exists: that is the intent here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        yield


def step_dir(root: Path, step: int) -> Path:
    return root / f"step-{step:08d}"


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def file_checksums(folder: Path) -> dict[str, str]:
    """xxh3-128 of every file (fast enough to hash multi-GB checkpoints at disk speed)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != CHECKSUMS:
            h = xxhash.xxh3_128()
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 22), b""):
                    h.update(chunk)
            out[p.relative_to(folder).as_posix()] = h.hexdigest()
    return out


def save_checkpoint(root: str | Path, step: int, model: nn.Module, optimizer: torch.optim.Optimizer,
                    trainer_state: dict[str, Any], d: Dist) -> Path:
    root = Path(root)
    final, tmp = step_dir(root, step), root / f".step-{step:08d}.tmp"
    if d.is_main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    barrier(d)
    msd, osd = get_state_dict(model, optimizer)
    with single_process_ok():
        dcp.save({"model": msd, "optim": osd}, checkpoint_id=str(tmp / "state"))
    torch.save(rng_state(), tmp / f"rng-{d.rank:05d}.pt")
    barrier(d)
    if d.is_main:
        write_json_atomic(tmp / STATE, {**trainer_state, "step": step, "world": d.world})
        write_json_atomic(tmp / CHECKSUMS, file_checksums(tmp))
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        write_text_atomic(root / "latest", final.name + "\n")
    barrier(d)
    return final


def latest_checkpoint(root: str | Path) -> Path | None:
    root = Path(root)
    pointer = root / "latest"
    if pointer.is_file():
        named = root / pointer.read_text(encoding="utf-8").strip()
        if (named / STATE).is_file():
            return named
    found = sorted(p for p in root.glob("step-*") if (p / STATE).is_file())
    return found[-1] if found else None


def verify_checkpoint(path: Path) -> dict[str, Any]:
    """The trainer state of a complete, uncorrupted checkpoint; otherwise a one-line UserError."""
    if not (path / STATE).is_file() or not (path / CHECKSUMS).is_file():
        raise UserError(f"{path}: not a gniazdo checkpoint (no {STATE} / {CHECKSUMS})")
    try:
        expected = json.loads((path / CHECKSUMS).read_text(encoding="utf-8"))
        state = json.loads((path / STATE).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{path}: corrupt checkpoint metadata") from None
    actual = file_checksums(path)
    for name, digest in expected.items():
        if name not in actual:
            raise UserError(f"{path}: corrupt checkpoint: {name} is missing")
        if actual[name] != digest:
            raise UserError(f"{path}: corrupt checkpoint: checksum of {name} does not match")
    return state


def load_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None,
                    d: Dist) -> dict[str, Any]:
    """Restore model (and optimizer) in place, and this rank's RNG states when the world size is the same."""
    path = Path(path)
    checked = broadcast_object(_verify_or_error(path) if d.is_main else None, d)
    if isinstance(checked, str):
        raise UserError(checked)
    msd, osd = get_state_dict(model, optimizer) if optimizer is not None else (_model_sd(model), None)
    state = {"model": msd} if osd is None else {"model": msd, "optim": osd}
    with single_process_ok():
        dcp.load(state, checkpoint_id=str(path / "state"))
    if optimizer is not None:
        set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
    else:
        from torch.distributed.checkpoint.state_dict import set_model_state_dict

        set_model_state_dict(model, state["model"])
    rng = path / f"rng-{d.rank:05d}.pt"
    if checked["world"] == d.world and rng.is_file():
        set_rng_state(torch.load(rng, weights_only=False))
    return checked


def _verify_or_error(path: Path) -> dict[str, Any] | str:
    try:
        return verify_checkpoint(path)
    except UserError as e:
        return str(e)


def _model_sd(model: nn.Module) -> dict[str, Any]:
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    return get_model_state_dict(model)


def prune_checkpoints(root: str | Path, keep_last: int, best: Path | None = None) -> list[Path]:
    """Delete all but the newest ``keep_last`` checkpoints (and ``best``); returns what was deleted."""
    found = sorted(p for p in Path(root).glob("step-*") if p.is_dir())
    keep = set(found[-keep_last:]) | ({best} if best is not None else set())
    gone = [p for p in found if p not in keep]
    for p in gone:
        shutil.rmtree(p, ignore_errors=True)
    return gone
