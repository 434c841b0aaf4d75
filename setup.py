"""Builds the optional C parts of the scorer: the scan engine (stratum_litellm/scoring/_bytescan.c),
the measurements it feeds (stratum_litellm/scoring/_measure.c), the kernel that turns counts
into a score (stratum_litellm/scoring/_score_kernel.c) and the features of the score's learned
part (stratum_litellm/scoring/_text.c).

Everything else is declared in pyproject.toml. ``optional=True``: without a C compiler the
install still succeeds and the scorer uses its pure-Python versions, with the same results.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(f"stratum_litellm.scoring.{name}", sources=[f"stratum_litellm/scoring/{name}.c"], extra_compile_args=["-O2"],
                  depends=["stratum_litellm/scoring/_bytescan_api.h"], optional=True)
        for name in ("_bytescan", "_measure", "_score_kernel", "_text")
    ]
)
