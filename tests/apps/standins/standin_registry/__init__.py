"""A registry filled by a setup call, which models expect to be ready when they are imported
(Django's app registry)."""


class Registry:
    def __init__(self) -> None:
        self.ready = False
        self.apps: list[str] = []


registry = Registry()


def setup(*apps: str) -> None:
    registry.apps.extend(apps)
    registry.ready = True
