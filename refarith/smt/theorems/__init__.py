"""Theorem modules; each one registers its theorems with refarith.smt.registry on import."""
