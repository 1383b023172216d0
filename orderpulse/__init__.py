"""OrderPulse: shared settings, the warehouse database and the command line."""
