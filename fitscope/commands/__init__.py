"""One module per CLI command. Each has `register(subparsers)`, which adds its parser(s) and sets
`handler`; heavy imports stay inside the handlers so `fitscope --help` is instant."""

COMMAND_MODULES = ("search", "worker", "catalog", "rerun", "sync", "ui", "report", "dashboard",
                   "compare", "predict", "confirm")
