"""ragcli: retrieval-augmented generation from the shell, built for time-to-first-token."""

__version__ = "0.1.0"
