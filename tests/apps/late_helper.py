TOKEN = "late-one"
