"""Yunying (云影): an open regional medical imaging cloud."""

__version__ = "0.1.0"
