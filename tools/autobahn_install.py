"""Install the Autobahn testsuite for Python 2.7 into a cache folder, once."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

AUTOBAHN_VERSION = "25.10.1"
PYTHON2_VERSION = "2.7.18"


class InstallError(RuntimeError):
    """The testsuite or the Python 2.7 that runs it is not available."""


@dataclass(frozen=True)
class AutobahnInstall:
    """Where the installed testsuite lives and the interpreter that runs it."""

    python2: Path
    site_dir: Path


def _pyenv_roots() -> list[Path]:
    """Candidate pyenv roots: $PYENV_ROOT, ``pyenv root``, then ~/.pyenv."""
    roots = []
    if os.environ.get("PYENV_ROOT"):
        roots.append(Path(os.environ["PYENV_ROOT"]))
    pyenv = shutil.which("pyenv")
    if pyenv:
        answer = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=False)
        if answer.returncode == 0 and answer.stdout.strip():
            roots.append(Path(answer.stdout.strip()))
    roots.append(Path.home() / ".pyenv")
    return roots


def find_python2() -> Path:
    """Return pyenv's Python 2.7 interpreter, the one the testsuite needs."""
    tried = []
    for root in _pyenv_roots():
        python2 = root / "versions" / PYTHON2_VERSION / "bin" / "python"
        if python2.is_file():
            return python2
        tried.append(str(python2))
    raise InstallError(
        f"Python {PYTHON2_VERSION} not found (tried {', '.join(tried)}); "
        f"install it with `pyenv install {PYTHON2_VERSION}`"
    )


def ensure_installed(cache_dir: Path) -> AutobahnInstall:
    """Install ``autobahntestsuite`` into ``cache_dir/site`` unless it is already there.

    pip writes into a staging folder that is renamed only on success, so an
    interrupted install is redone on the next run instead of being half used.
    """
    python2 = find_python2()
    site_dir = cache_dir / "site"
    if (site_dir / f"autobahntestsuite-{AUTOBAHN_VERSION}.dist-info").is_dir():
        return AutobahnInstall(python2, site_dir)

    staging = cache_dir / "site.partial"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(site_dir, ignore_errors=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    print(f"Installing autobahntestsuite=={AUTOBAHN_VERSION} into {site_dir} (about a minute)...", flush=True)
    command = [
        str(python2),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-warn-script-location",
        "--target",
        str(staging),
        f"autobahntestsuite=={AUTOBAHN_VERSION}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise InstallError(f"pip failed (exit {result.returncode}):\n{result.stdout}{result.stderr}")
    staging.rename(site_dir)
    return AutobahnInstall(python2, site_dir)
