from standin_settings import SETTINGS

CORS = SETTINGS.get("cors", "none")
