# cython: language_level=3
"""Placeholder for the Cython execution core (filled by the execution-core work)."""

def core_available():
    """True: the compiled extension was built and imports."""
    return True
