"""One module per tab; each takes an AppContext."""
