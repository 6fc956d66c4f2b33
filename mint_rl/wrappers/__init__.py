"""mint_rl.wrappers."""
