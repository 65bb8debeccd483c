"""reasongen: controllable recommendation-reason generation with fine-tuned language models."""

__version__ = "0.1.0"
