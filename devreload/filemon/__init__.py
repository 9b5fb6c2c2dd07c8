"""The file monitors: each runs in the monitor process, on a thread of its own, and only
reports paths. The interface and globs, the choice of a monitor, one module per backend,
``.gitignore`` and the mount table."""
