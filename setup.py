"""Packages and package data (the rest of the metadata is in pyproject.toml).

The committed golden vectors live at the top of the repository (``golden_vectors/``) and travel inside the
package as ``refarith/golden_vectors/``: the package ``refarith.golden_vectors`` is mapped onto that directory,
and :func:`refarith.golden.generate.default_dir` reads it through :mod:`importlib.resources`.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["refarith", "refarith.*"]) + ["refarith.golden_vectors"],
    package_dir={"refarith.golden_vectors": "golden_vectors"},
    package_data={"refarith": ["py.typed"], "refarith.golden_vectors": ["MANIFEST.json", "README.md", "*.txt.gz"]},
)
