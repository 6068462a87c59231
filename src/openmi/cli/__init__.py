"""The ``openmi`` command line."""
