"""The app behind examples/include: it shows the greeting its ini chain gave it."""


def make_app(global_config, greeting="Hi", **settings):
    def app(environ, start_response):
        body = f"{greeting}\n".encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    return app
