"""Capabilities that built-in plugins declare beyond the core ones, one module each."""
