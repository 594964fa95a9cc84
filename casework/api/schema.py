"""OpenAPI generation: every operation documents the one error body for each failure it can give."""

from drf_spectacular.openapi import AutoSchema

from .errors import ErrorSerializer

# Failures any authenticated operation can produce; writes add 400, actions 409/428.
COMMON_ERRORS = ("400", "401", "403", "404", "405", "406", "429")
WRITE_ERRORS = ("409", "415", "428")


class ApiAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        codes = COMMON_ERRORS + (WRITE_ERRORS if self.method in ("POST", "PUT", "PATCH") else ())
        for code in codes:
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    ErrorSerializer, code, direction=direction
                )
        return responses
