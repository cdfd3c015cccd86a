"""The optional native part of the build; pyproject.toml holds everything else.

``auditagent.redaction._screen`` (C, auditagent/redaction/_screen.c) is the redaction screen in
one pass, ``auditagent.redaction._spoken`` (auditagent/redaction/_spoken.c) reads numbers in
ASCII text. Both are optional: without a compiler the package installs without them and
auditagent/redaction/ does the same in Python, with the same results.
"""

from __future__ import annotations

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "auditagent.redaction._screen",
            sources=["auditagent/redaction/_screen.c"],
            optional=True,
        ),
        Extension(
            "auditagent.redaction._spoken",
            sources=["auditagent/redaction/_spoken.c"],
            optional=True,
        ),
    ]
)
