"""Pages of the youth area (see casework/views/__init__.py)."""

urlpatterns: list = []
