"""Production settings for `python -m bench http`, plus the key of the loaded data.

``generate_load_data`` on a development setup encrypts with the public
development key, which production refuses as a *current* key; the benchmark
gives production a fresh key and appends the loaded data's key here so the
cases it wrote can still be read (decryption tries every key, newest first).
"""

import os

from config.settings.production import *  # noqa: F403
from config.settings.production import FIELD_ENCRYPTION_KEYS

_loaded = os.environ.get("BENCH_LOADED_DATA_KEY", "")
if _loaded:
    FIELD_ENCRYPTION_KEYS = [*FIELD_ENCRYPTION_KEYS, _loaded]
