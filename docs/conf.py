"""Sphinx configuration for qstore-qiskit.

Build with ``docs/build.sh`` (``python -m sphinx -W -b html docs <out>``). The Qiskit
ecosystem theme (``qiskit-sphinx-theme``, in the ``docs`` extra) is used when it is
installed; Sphinx's bundled ``alabaster`` otherwise.
"""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

from qstore_qiskit.version import __version__  # noqa: E402

project = "qstore-qiskit"
author = "qstore-qiskit developers"
copyright = "2026, qstore-qiskit developers"  # noqa: A001
version = release = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "reno.sphinxext",
]
# api.rst documents every public object once with automodule; autosummary tables only
# list them, so no stub pages are generated into the source tree.
autosummary_generate = False
autodoc_typehints = "description"
autodoc_member_order = "bysource"
autodoc_default_options = {"show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
intersphinx_mapping = {}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path = []
html_static_path = ["_static"]
nitpicky = False

try:  # the Qiskit ecosystem theme when installed, Sphinx's default otherwise
    import qiskit_sphinx_theme  # noqa: F401

    html_theme = "qiskit-ecosystem"
except ImportError:  # pragma: no cover
    html_theme = "alabaster"
html_title = f"qstore-qiskit {release}"


def _git_has_revision(revision: str) -> bool:
    """Whether ``revision`` names a commit in this repository."""
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"],
            cwd=os.path.dirname(os.path.abspath(__file__)), capture_output=True, check=False,
        )
    except OSError:
        return False
    return out.returncode == 0


def setup(app):
    """Make ``release-notes``' ``:earliest-version:`` optional until that tag exists.

    reno raises on an ``earliest-version`` the repository has no tag for (e.g. before
    the first release is tagged); the notes are then listed from the start of history.
    """
    from reno import sphinxext

    class ReleaseNotes(sphinxext.ReleaseNotesDirective):
        def run(self):
            earliest = self.options.get("earliest-version")
            if earliest and not _git_has_revision(earliest):
                self.options = {k: v for k, v in self.options.items() if k != "earliest-version"}
            return super().run()

    app.add_directive("release-notes", ReleaseNotes, override=True)
    return {"parallel_read_safe": True}
