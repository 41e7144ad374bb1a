"""screening: find every relevant study while reading as few abstracts as possible."""

__version__ = "0.1.0"
