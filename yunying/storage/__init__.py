"""Yunying package."""
