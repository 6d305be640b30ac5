"""Shared test setup. Its presence puts tests/ on sys.path, so tests can import `strategies`."""
