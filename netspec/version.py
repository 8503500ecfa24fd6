"""netspec's version (``netspec.__version__``, ``netspec --version``, written into checkpoints): pyproject.toml's."""
__version__ = "0.1.0"
