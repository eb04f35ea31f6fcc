"""Workflows that combine generation, analysis and storage: pipeline, versions, compare, recipes, review."""
