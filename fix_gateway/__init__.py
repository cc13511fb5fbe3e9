"""fixgw: a FIX 4.4 exchange gateway."""

__version__ = "0.1.0"
