"""Imported by both the web app and the worker."""

TOKEN = "s1"
