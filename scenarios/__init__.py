"""Scenarios shipped with mlmarket (YAML files, read with importlib.resources)."""
