"""The package version (read by setuptools and voxvm.__version__)."""

__version__ = "0.1.0"
