"""Builds the optional C engine of the scorer (stratum_litellm/_bytescan.c).

Everything else is declared in pyproject.toml. ``optional=True``: without a C compiler the
install still succeeds and the scorer uses its pure-Python engine, with the same results.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "stratum_litellm._bytescan",
            sources=["stratum_litellm/_bytescan.c"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
