"""Plotting code for the paper figures."""
