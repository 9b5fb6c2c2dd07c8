"""A library with no state of its own: always safe to import ahead of time."""

VALUE = "pure"
