"""Estimators: one module per layer family, plus the registry."""
