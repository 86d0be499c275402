"""Scanners: pure functions of (ParsedMessage, Envelope) returning findings."""
