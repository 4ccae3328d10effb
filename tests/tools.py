"""Helpers for tests that need outside programs (ssh-keygen, pdfsig, …)."""

from __future__ import annotations

import os
import shutil

import pytest


def require_tool(name: str) -> str:
    """Path of the program `name`; without it the test is skipped, or fails when
    CONSENSUS_REQUIRE_TOOLS=1 (as in CI, where a skipped check would be a silent gap)."""
    path = shutil.which(name)
    if path:
        return path
    if os.environ.get("CONSENSUS_REQUIRE_TOOLS") == "1":
        pytest.fail(f"{name} is required (CONSENSUS_REQUIRE_TOOLS=1) but is not on PATH")
    pytest.skip(f"{name} is not installed")
