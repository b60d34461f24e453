"""Pictures (matplotlib is imported only inside this package)."""
