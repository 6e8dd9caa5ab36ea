"""Optional dependencies: the media stack (Pillow, PyAV) is the ``media`` extra, imported only
where images and videos are handled, so a text-only bot installs and imports far less."""

from __future__ import annotations

import importlib.util
from functools import cache

from ._exceptions import MissingDependency

MEDIA_EXTRA = "pip install 'pysky_async[media]'"


@cache
def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def require_media(module: str, what: str) -> None:
    """Raise MissingDependency naming the extra when ``module`` (``PIL`` or ``av``) is missing."""
    if not _installed(module):
        package = {"PIL": "Pillow", "av": "PyAV"}.get(module, module)
        raise MissingDependency(f"{what} needs {package}, which is not installed: {MEDIA_EXTRA}")
