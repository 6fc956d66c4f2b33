"""mint_rl.policies."""
