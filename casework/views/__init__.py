"""Pages for cases, one module per audience; each module has its own ``urlpatterns``.

cases: the shared case list and detail; youth: the youth portal; public: pages
without login; staff: the organisation workbench; supervisor: the console.
"""
