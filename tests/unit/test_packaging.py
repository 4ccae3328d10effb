"""Every file pyproject.toml ships as package data exists (a name without a file is a
promise the wheel breaks)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_data_pattern_matches_a_file():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    missing = []
    for package, patterns in config["tool"]["setuptools"]["package-data"].items():
        base = ROOT / package.replace(".", "/")
        missing += [f"{package}/{p}" for p in patterns if not list(base.glob(p))]
    assert not missing, missing
