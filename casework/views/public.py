"""Pages of the public area (see casework/views/__init__.py)."""

urlpatterns: list = []
