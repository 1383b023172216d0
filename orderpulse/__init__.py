"""The `orderpulse` application: the command line, the demo runner and the services of
`orderpulse up`. It may import every package; no package imports it."""
