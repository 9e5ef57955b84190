"""The package version: defined once here, mirrored by js/package.json (a test checks they agree)."""

__version__ = "0.1.0"
