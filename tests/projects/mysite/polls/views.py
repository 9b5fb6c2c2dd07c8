from django.apps import apps
from django.shortcuts import render


def index(request):
    # No database here: the tests run without one.
    context = {
        "greeting": "Hello, world. You're at the polls index.",
        "apps": [config.label for config in apps.get_app_configs()],
    }
    return render(request, "polls/index.html", context)
