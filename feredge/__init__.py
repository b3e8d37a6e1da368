"""feredge: facial-expression recognition from training to the edge."""

__version__ = "0.1.0"
