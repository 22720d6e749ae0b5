"""ctrkit."""
