"""``public-api`` directive (Markdown pages): autodoc entries for every name in a package's ``__all__``.

Each name is documented under the package (``websync.connect``), never under the module that
defines it, so the reference follows the public API and not the source layout::

    ```{public-api} websync
    ```
"""

from __future__ import annotations

import importlib
import inspect

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles


def _directive(obj: object) -> str:
    if inspect.isclass(obj):
        return "autoexception" if issubclass(obj, BaseException) else "autoclass"
    if callable(obj):
        return "autofunction"
    return "autodata"


class PublicApi(SphinxDirective):
    """Documents ``package.__all__`` in its order."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        package = self.arguments[0]
        module = importlib.import_module(package)
        # One MyST eval-rst block: autodoc writes reStructuredText, which must be parsed as such.
        lines: list[str] = ["```{eval-rst}", f".. currentmodule:: {package}", ""]
        for name in module.__all__:
            kind = _directive(getattr(module, name))
            lines.append(f".. {kind}:: {package}.{name}")
            if kind in ("autoclass", "autoexception"):
                lines += ["   :members:", "   :show-inheritance:"]
            lines.append("")
        lines.append("```")
        content = StringList(lines, source=f"<public-api {package}>")
        container = nodes.section()
        container.document = self.state.document
        nested_parse_with_titles(self.state, content, container)
        return list(container.children)


def setup(app: Sphinx) -> dict[str, object]:
    app.add_directive("public-api", PublicApi)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
