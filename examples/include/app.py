"""The app behind examples/include: it shows the greeting its ini chain gave it."""


def make_app(global_config, greeting="Hi", **settings):
    def app(environ, start_response):
        body = f"{greeting}\n".encode()
        headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        start_response("200 OK", headers)
        return [body]

    return app
