"""Imported by app_basic; the ignore test changes it under -x and expects no restart."""

VALUE = 1
