"""fifa-toolkit: explainable deepfake analysis datasets, annotator, benchmark and baseline."""

__version__ = "0.1.0"
