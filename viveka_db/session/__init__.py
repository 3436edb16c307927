"""Engines and session factories."""
