"""Task-local session context."""
