TOKEN = "pkg-one"
