"""Pages of the supervisor area (see casework/views/__init__.py)."""

urlpatterns: list = []
