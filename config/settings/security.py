"""Content-Security-Policy, sent by config.middleware.ContentSecurityPolicyMiddleware.

script-src has no 'unsafe-inline' and no 'unsafe-eval': every script is a file under
static/. Styles allow inline attributes only because the Django admin uses them.
Referrer-Policy (same-origin; the public progress page sends no-referrer itself),
X-Content-Type-Options and the other headers are set in config/settings/privacy.py.
"""

CONTENT_SECURITY_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
