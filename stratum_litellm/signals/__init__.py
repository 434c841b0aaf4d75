"""Load and health signals the router consults (GPU state, ...)."""
