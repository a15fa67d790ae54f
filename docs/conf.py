"""Sphinx configuration for qstore-qiskit."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

project = "qstore-qiskit"
author = "qstore-qiskit developers"
copyright = "2026, qstore-qiskit developers"  # noqa: A001

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "reno.sphinxext",
]
autosummary_generate = True
autodoc_typehints = "description"
napoleon_google_docstring = True
intersphinx_mapping = {}
exclude_patterns = ["_build"]
nitpicky = False

try:  # the Qiskit ecosystem theme when installed, Sphinx's default otherwise
    import qiskit_sphinx_theme  # noqa: F401

    html_theme = "qiskit-ecosystem"
except ImportError:  # pragma: no cover
    html_theme = "alabaster"
html_title = "qstore-qiskit"
