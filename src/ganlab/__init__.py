"""ganlab: a reproducible GAN lab (DVC pipeline, MLflow tracking)."""

__version__ = "0.1.0"
