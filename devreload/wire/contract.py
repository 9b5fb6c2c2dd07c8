"""What monitor and worker agree on outside the channel: exit codes, environment
variables and the one URL both of them serve."""

#: The exit code with which a worker asks its monitor for a fresh start.
EXIT_RELOAD = 75
#: The entry point that runs a script or ``-m`` module as ``__main__`` in the worker.
RUN_PROGRAM = "devreload.worker.runtime:run_program"
#: How a spawned worker finds its channel and listening sockets: their fds, comma-separated.
FDS_ENV = "DEVRELOAD_WORKER_FDS"
#: How the template finds its control channel, and what it imports before it reads it:
#: ``<fd>,<monitor pid>[,<module>...]``.
TEMPLATE_ENV = "DEVRELOAD_TEMPLATE_FD"
#: Where pages listen for reloads: served by the worker's live-reload wrapper, and by the
#: monitor's error page while the app is broken.
EVENTS_PATH = "/__devreload__/events"
