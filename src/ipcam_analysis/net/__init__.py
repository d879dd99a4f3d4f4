"""Small network helpers shared by the listeners and the dashboard: the ASGI server thread,
the open-files limit, and the probe that tells whether a listener answers."""
