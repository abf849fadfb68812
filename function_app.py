"""Azure Functions entry point: the coursemart ASGI app itself, served as one HTTP function.

Every path (``/api/GetRecentCourses``, ``/v1/...``, ``/``) reaches the same app that
``coursemart serve`` runs; ``host.json`` clears the ``/api`` route prefix so paths are unchanged.
The app's own API keys (``COURSEMART_API_KEYS``) guard it, so the function is anonymous to the host.
"""

from __future__ import annotations

import azure.functions as func

from coursemart.api import create_app

app = func.AsgiFunctionApp(app=create_app(), http_auth_level=func.AuthLevel.ANONYMOUS)
