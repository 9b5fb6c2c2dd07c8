"""What the browser talks to, in the worker (and, for the error page, in the monitor):
live reload and its client, the WSGI and ASGI wrappers, error pages, the Host guard, and
what Flask's and Django's own dev servers do."""
