"""The decisions: state machine, routing, risk, merges, inventory locks, address placement.

Pure Python/pandas, no Dagster imports; rules are read from `config/`."""
