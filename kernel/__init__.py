"""The shared kernel every package may import: settings, the warehouse database, rule-file
loading and process preparation. It imports no other OrderPulse package."""
