"""Great Expectations suites on the raw tables, the key marts and the decisions' input.

`gx/` is a GX 1.x file data context (suites as JSON under `gx/expectations/`); `targets`
says which rows each suite reads, `rules` turns `config/data_checks.yaml` into the suites'
parameters and `runner` validates in PostgreSQL. Imports no GX until a suite runs.
"""
