"""The version, read by the build (pyproject.toml) into the package metadata."""

__version__ = "0.1.0.dev0"
