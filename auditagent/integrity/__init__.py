"""Integrity formats: how records, chains, ledgers and checkpoints are encoded and checked."""
