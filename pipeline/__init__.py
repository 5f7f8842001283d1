"""Sentinela: news monitoring with alerting for prison gang control and security operations."""

from __future__ import annotations

__version__ = "0.1.0"
