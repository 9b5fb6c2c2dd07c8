from standin_registry import registry

READY = registry.ready
APPS = list(registry.apps)
