"""mint_rl.data."""
