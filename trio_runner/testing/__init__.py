"""Helpers and pytest fixtures for testing PHP apps served by trio_runner."""
