"""Runs in the monitor process, never in a worker: the restart loop, the records of its
workers, how workers are launched, the error page's server, the terminal."""
