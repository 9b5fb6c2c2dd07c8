"""Imported by the worker only."""

VERSION = "j1"
