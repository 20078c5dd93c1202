"""hardmine: hard-example mining for PyTorch."""
__version__ = "0.1.0"
