"""The version of the distribution that ships both ``websync`` and ``supervisors``.

The one place it is written: setup.cfg reads it (``attr:``), ``supervisors.__version__`` and
``websync.__version__`` import it. It lives on the ``supervisors`` side because ``supervisors``
never imports ``websync``.
"""

__version__ = "0.1.0"
