"""End-to-end experiments built from the package's layers (envs + wrappers + policies)."""
