"""pytest fixtures that start PHP backends: see trio_runner.testing."""
