"""The optional native part of the build; pyproject.toml holds everything else.

``auditagent.redaction._screen`` (C, auditagent/redaction/_screen.c) is the redaction screen in
one pass. It is optional: without a compiler the package installs without it and
auditagent/redaction/redactor.py screens in Python, with the same results.
"""

from __future__ import annotations

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "auditagent.redaction._screen",
            sources=["auditagent/redaction/_screen.c"],
            optional=True,
        )
    ]
)
