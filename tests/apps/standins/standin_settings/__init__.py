"""Settings the app applies first, read by submodules when they are imported (Kinto's case:
cornice services read the CORS origins at import)."""

SETTINGS: dict[str, str] = {}


def configure(**settings: str) -> None:
    SETTINGS.update(settings)
