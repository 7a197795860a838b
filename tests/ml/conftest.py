"""Fixtures for the ML tests: one synthetic store per session, torch on one thread."""

from __future__ import annotations

import shutil

import pytest

torch = pytest.importorskip("torch", reason="the [ml] extra is not installed")

from tests.ml import synthetic_store  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    torch.set_num_threads(1)  # 2 shared cores: more threads only contend


@pytest.fixture(scope="session")
def ml_store(tmp_path_factory) -> tuple[str, dict]:
    """12 tiles (6 train, 3 val, 3 test), 64 px; returns (url, arrays written)."""
    url = str(tmp_path_factory.mktemp("ml") / "synth.zarr")
    return url, synthetic_store.build(url)


@pytest.fixture
def store_copy(ml_store, tmp_path) -> tuple[str, dict]:
    """A private copy for tests that change chunks."""
    url, data = ml_store
    dst = str(tmp_path / "copy.zarr")
    shutil.copytree(url, dst)
    return dst, data
