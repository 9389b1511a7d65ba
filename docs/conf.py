"""Sphinx configuration: the Markdown pages through MyST, the API reference through autodoc.

Built by ``make docs`` (``sphinx -W``: any warning fails the build).
"""

from __future__ import annotations

import sys
from pathlib import Path

import websync

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "websync"
author = "the websync authors"
copyright = "2026, the websync authors"
release = websync.__version__
version = release

extensions = ["myst_parser", "sphinx.ext.autodoc", "public_api"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
root_doc = "index"

# `[text](page.md#a-heading)` links resolve to headings up to level 3.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True

html_theme = "furo"
html_title = f"websync {release}"
