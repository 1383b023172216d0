"""Watching the business and the data: Great Expectations suites, the Order Health Index,
the detectors behind the sensors, and the alert rules and their delivery (email, robot).

Plain library: no Dagster here (orchestration/quality wires it)."""
