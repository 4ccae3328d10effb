"""Ship the top-level templates/, static/, migrations/ and tools/ inside the wheel.

They stay at the repository's root (where designers, translators and Alembic look for them);
a built wheel or `pip install .` copies them into the package as consensus/<folder>, and
consensus.resources finds them there. An editable install (`pip install -e .`) copies
nothing: the package then finds the folders in the checkout. Metadata lives in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = ("templates", "static", "migrations", "tools")


class BuildPyWithFolders(build_py):
    """build_py that also copies the shipped top-level folders into the package."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        for name in SHIPPED:
            target = Path(self.build_lib) / "consensus" / name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(
                ROOT / name,
                target,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"),
            )


setup(cmdclass={"build_py": BuildPyWithFolders})
