"""torchrun with 2 CPU processes (gloo): DDP and FSDP2 give the losses of one process with the same global batch,
and a distributed checkpoint loads in another world size."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .conftest import train_config, train_losses, write_config

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="gloo multi-process tests run on Linux")


def torchrun(config, nproc: int, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "gniazdo", "train", "--config", str(config), *overrides]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


@pytest.fixture(scope="module")
def single(tmp_path_factory, shards):
    """The reference: one process, micro-batch 4 (the global batch of 2 ranks x 2)."""
    tmp = tmp_path_factory.mktemp("single")
    cfg = write_config(tmp / "c.yaml", train_config(tmp / "run", shards, micro_batch_size=4, max_steps=4,
                                                    **{"eval.interval": 2, "checkpoint.interval": 2}))
    torchrun(cfg, 1)
    return train_losses(tmp / "run"), tmp / "run"


@pytest.mark.parametrize("mode", ["ddp", "fsdp"])
def test_two_processes_equal_one(tmp_path, shards, single, mode):
    reference, _ = single
    cfg = write_config(tmp_path / "c.yaml", train_config(tmp_path / "run", shards, micro_batch_size=2, max_steps=4,
                                                         **{"parallel.mode": mode, "eval.interval": 2,
                                                            "checkpoint.interval": 2}))
    torchrun(cfg, 2)
    losses = train_losses(tmp_path / "run")
    assert sorted(losses) == sorted(reference)
    assert all(abs(losses[s] - reference[s]) < 1e-4 for s in reference), (losses, reference)
    # the distributed checkpoint resumes in one process (another world size) and goes on
    cfg1 = write_config(tmp_path / "c1.yaml", train_config(tmp_path / "run", shards, micro_batch_size=4,
                                                           max_steps=5))
    torchrun(cfg1, 1)
    assert 5 in train_losses(tmp_path / "run")
