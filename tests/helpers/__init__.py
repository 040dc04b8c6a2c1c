"""Shared builders for tests: keys, genesis, transactions, chains."""
