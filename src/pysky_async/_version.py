"""The one version string (the package metadata and the User-Agent come from it)."""

__version__ = "0.1.0"
