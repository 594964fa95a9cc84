"""Pages of the staff area (see casework/views/__init__.py)."""

urlpatterns: list = []
