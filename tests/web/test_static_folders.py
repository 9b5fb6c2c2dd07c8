"""Which folders each framework serves static files from, found on real apps."""

from __future__ import annotations

from pathlib import Path

import flask
import pytest

from devreload.web.static import static_folders


def test_flask_static_folders_of_the_app_and_its_blueprints(tmp_path: Path) -> None:
    (tmp_path / "static").mkdir()
    (tmp_path / "shop" / "assets").mkdir(parents=True)
    app = flask.Flask("site", root_path=str(tmp_path))
    shop = flask.Blueprint("shop", "shop", root_path=str(tmp_path / "shop"),
                           static_folder="assets")
    app.register_blueprint(shop)
    assert static_folders(app) == [str(tmp_path / "static"), str(tmp_path / "shop" / "assets")]


def test_starlette_static_mounts(tmp_path: Path) -> None:
    staticfiles = pytest.importorskip("starlette.staticfiles")
    routing = pytest.importorskip("starlette.routing")
    applications = pytest.importorskip("starlette.applications")
    (tmp_path / "public").mkdir()
    app = applications.Starlette(routes=[
        routing.Mount("/static", app=staticfiles.StaticFiles(directory=tmp_path / "public")),
    ])
    assert static_folders(app) == [str(tmp_path / "public")]


def test_pyramid_static_views(tmp_path: Path) -> None:
    config_module = pytest.importorskip("pyramid.config")
    (tmp_path / "static").mkdir()
    with config_module.Configurator() as config:
        config.add_static_view("static", str(tmp_path / "static"))
        app = config.make_wsgi_app()
    assert static_folders(app) == [str(tmp_path / "static")]


def test_an_app_of_no_framework_has_none() -> None:
    assert static_folders(lambda environ, start_response: []) == []
