"""Package-level promises: version everywhere, licence, metadata, typed top-level names."""

from __future__ import annotations

import configparser
import contextlib
import io
import os
import pathlib
import subprocess
import sys
import tempfile
import textwrap
import unittest

import qstore_qiskit
from qstore_qiskit import cli
from qstore_qiskit.version import __version__

ROOT = pathlib.Path(__file__).resolve().parents[1]


class TestVersion(unittest.TestCase):
    def test_cli_version(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), self.assertRaises(SystemExit) as exit_:
            cli.main(["--version"])
        self.assertEqual(exit_.exception.code, 0)
        self.assertEqual(out.getvalue().strip(), f"qstore-qiskit {__version__}")

    def test_version_is_020_and_exported(self):
        self.assertEqual(qstore_qiskit.__version__, __version__)
        self.assertRegex(__version__, r"^\d+\.\d+\.\d+")
        self.assertGreaterEqual(tuple(int(x) for x in __version__.split(".")[:2]), (0, 2))

    def test_release_notes_carry_the_version(self):
        text = (ROOT / "releasenotes" / "config.yaml").read_text()
        self.assertIn(f'unreleased_version_title: "{__version__}"', text)


class TestMetadata(unittest.TestCase):
    def test_license_file_is_apache_2(self):
        text = (ROOT / "LICENSE").read_text()
        self.assertIn("Apache License", text)
        self.assertIn("Version 2.0, January 2004", text)
        self.assertIn("END OF TERMS AND CONDITIONS", text)  # the full text, not a stub

    def test_setup_cfg_metadata_complete(self):
        cfg = configparser.ConfigParser()
        cfg.read(ROOT / "setup.cfg")
        meta = cfg["metadata"]
        for key in ("name", "version", "description", "author", "author_email",
                    "license", "license_files", "classifiers"):
            with self.subTest(key):
                self.assertTrue(meta.get(key, "").strip(), key)
        self.assertIn("License :: OSI Approved :: Apache Software License", meta["classifiers"])
        self.assertIn("Typing :: Typed", meta["classifiers"])

    def test_setup_cfg_names_no_placeholder_url(self):
        # There is no public repository yet: the metadata must not send users to a
        # guessed address (the former placeholder github.com/qstore/... is not ours).
        cfg = configparser.ConfigParser()
        cfg.read(ROOT / "setup.cfg")
        meta = cfg["metadata"]
        self.assertNotIn("url", meta)
        self.assertNotIn("project_urls", meta)
        self.assertNotIn("github.com/qstore", (ROOT / "setup.cfg").read_text())


class TestTypedTopLevel(unittest.TestCase):
    """``from qstore_qiskit import QStoreProvider`` is the class to mypy, not ``Any``."""

    def test_mypy_sees_real_types(self):
        usage = textwrap.dedent(
            """
            from qstore_qiskit import QStoreProvider, QStoreBackend, LocalServer, TemplateCache

            provider = QStoreProvider()
            reveal_type(provider)
            backend = provider.get_backend("simulator")
            reveal_type(backend)
            reveal_type(LocalServer)
            provider.no_such_method()  # an error only if the name is typed
            """
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "usage.py")
            with open(path, "w") as fh:
                fh.write(usage)
            env = dict(os.environ, PYTHONPATH=str(ROOT), MYPYPATH=str(ROOT))
            proc = subprocess.run(
                [sys.executable, "-m", "mypy", path, "--follow-imports=silent", "--ignore-missing-imports",
                 "--no-incremental", "--cache-dir", os.path.join(tmp, "cache")],
                capture_output=True, text=True, env=env, cwd=tmp, timeout=300,
            )
        out = proc.stdout + proc.stderr
        self.assertIn('Revealed type is "qstore_qiskit.providers.provider.QStoreProvider"', out)
        self.assertIn('Revealed type is "qstore_qiskit.providers.backend.QStoreBackend"', out)
        self.assertIn("-> qstore_qiskit.server.local_server.LocalServer", out)
        self.assertIn('"QStoreProvider" has no attribute "no_such_method"', out)
        self.assertEqual(out.count("error:"), 1, out)

    def test_import_stays_lazy(self):
        # The TYPE_CHECKING block must not import the HTTP stack at runtime.
        code = "import sys, qstore_qiskit; print('aiohttp' in sys.modules, 'qstore_qiskit.providers' in sys.modules)"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
        self.assertEqual(out.stdout.split(), ["False", "False"], out.stderr)


if __name__ == "__main__":
    unittest.main()
