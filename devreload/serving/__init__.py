"""From a user's app to a running server: ``serve()``, the options, the ini and
PasteDeploy, loading the app. The monitor side binds and starts the loop; the worker
side loads the app and hands it to a server."""
