"""Open311 GeoReport v2 at /open311/v2/: categories are the services, cases the requests.

Every request record is built from casework.public.public_view, so Open311 shows
exactly what the public progress page shows.
"""
