"""The REST API: serializers check the shape of input, views call services and selectors.

Authorization lives in casework.selectors.cases_visible_to (which cases a person may
list) and casework.permissions (what they may see and do with one case); see docs/api.md.
"""
