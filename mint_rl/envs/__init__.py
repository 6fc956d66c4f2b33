"""mint_rl.envs."""
