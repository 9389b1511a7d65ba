"""Builds websync's optional C accelerator; without a compiler websync installs pure Python.

``WEBSYNC_PURE_PYTHON=1`` at build time leaves the accelerator out altogether: the wheel is then
``py3-none-any``, for platforms that get no binary wheel (``make dist`` builds both kinds).
"""

import os

from setuptools import Extension, setup

if os.environ.get("WEBSYNC_PURE_PYTHON"):
    setup()
else:
    setup(ext_modules=[Extension("websync.core._speedups", sources=["websync/core/_speedups.c"], optional=True)])
