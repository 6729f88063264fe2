"""Analyses of what a discovery found: causal validation of a circuit (`circuit`), with the
plots in `plots`."""
