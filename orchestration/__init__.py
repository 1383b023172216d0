"""Dagster wiring only: definitions, assets per layer, schedules, sensors and resources.

The only package that imports Dagster; the logic it runs lives in `connectors`, `fulfillment`,
`quality` and `sandbox`.
"""
