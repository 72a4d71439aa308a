"""One module per rule body that needs more than a call: load, compute, write with provenance."""
