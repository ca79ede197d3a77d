"""Shared fixtures: small generated sequences, so the tests need no downloaded data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mot.synthetic import SyntheticSpec, generate_sequence

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """A folder with two short synthetic sequences (MOT17-form ground truth, noisy det.txt)."""
    root = tmp_path_factory.mktemp("synthetic")
    generate_sequence(root, SyntheticSpec(name="SYN-A", num_frames=40, num_people=6, seed=11))
    generate_sequence(root, SyntheticSpec(name="SYN-B", num_frames=30, num_people=5, seed=12))
    return root


@pytest.fixture
def seq_copy(synthetic_root, tmp_path) -> Path:
    """A private, writable copy of SYN-A (for tests that damage it)."""
    dst = tmp_path / "SYN-A"
    shutil.copytree(synthetic_root / "SYN-A", dst)
    return dst
