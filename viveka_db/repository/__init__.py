"""The parts ``DbRepo`` is composed of, one concern per module."""
