"""Builds websync's optional C accelerator; without a compiler websync installs pure Python."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("websync._speedups", sources=["websync/_speedups.c"], optional=True)])
