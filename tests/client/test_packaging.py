"""The client distribution stands alone: httpx is its only dependency, the plugin is
registered under ``pytest11``, ``py.typed`` ships, and importing it never imports the
server (``app``), so it fits an application's test environment."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import distribution

import mailharness


def test_metadata_and_entry_point() -> None:
    dist = distribution("mailharness-client")
    assert dist.requires is not None
    required = [r for r in dist.requires if "extra ==" not in r]
    assert required == ["httpx>=0.27"]
    assert 'pytest>=8.0; extra == "pytest"' in dist.requires
    assert dist.metadata["Requires-Python"] == ">=3.11"
    [entry] = [e for e in dist.entry_points if e.group == "pytest11"]
    assert (entry.name, entry.value) == ("mailharness", "mailharness.pytest_plugin")
    assert sorted(mailharness.__all__) == mailharness.__all__
    assert all(hasattr(mailharness, name) for name in mailharness.__all__)


def test_importing_the_client_and_plugin_never_imports_the_server() -> None:
    code = (
        "import sys, mailharness, mailharness.pytest_plugin\n"
        "from pathlib import Path\n"
        "assert (Path(mailharness.__file__).parent / 'py.typed').is_file()\n"
        "bad = sorted(m for m in sys.modules if m == 'app' or m.startswith('app.'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd="/")
