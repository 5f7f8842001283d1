"""The classifier behind one interface."""

from __future__ import annotations

from pipeline.classify.base import LABELS, Classifier, Document, Prediction

__all__ = ["LABELS", "Classifier", "Document", "Prediction"]
