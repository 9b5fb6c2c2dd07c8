"""Imported by the fixture apps; tests rewrite TOKEN to make (and recognise) a restart."""

TOKEN = "one"
