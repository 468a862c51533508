"""setuptools reads the project from pyproject.toml; this file only adds the wheel's bundle.

An installed harness (`pip install .`, not editable) has no checkout beside it, so the wheel carries what
its commands need besides code in matrix/_bundle/: the reference apps (`check --run`, `cell`, `run`), the
Dockerfiles (the Docker backend) and the committed results (`check` looks them up). The cells' logs stay in
the repository. matrix/paths.py finds the bundle when there is no checkout.
"""
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
TREES = ("apps", "dockerfiles")
FILES = ("results/matrix.json", "results/full/matrix.json", "results/history.json", "results/full/history.json")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")


class BuildPyWithBundle(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install runs from the checkout itself
        bundle = os.path.join(self.build_lib, "matrix", "_bundle")
        shutil.rmtree(bundle, ignore_errors=True)
        for tree in TREES:
            source = os.path.join(HERE, tree)
            if os.path.isdir(source):
                shutil.copytree(source, os.path.join(bundle, tree),
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "tests")
                                if tree == "apps" else SKIP)
        for name in FILES:
            source = os.path.join(HERE, name)
            if os.path.isfile(source):
                os.makedirs(os.path.dirname(os.path.join(bundle, name)), exist_ok=True)
                shutil.copy2(source, os.path.join(bundle, name))


setup(cmdclass={"build_py": BuildPyWithBundle})
