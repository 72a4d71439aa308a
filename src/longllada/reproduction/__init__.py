"""The reproduction report: verdicts per published number, run provenance, known differences."""
