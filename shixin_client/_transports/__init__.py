"""Transports: one module per way of reaching a model, all behind the contract in base.py."""
