"""The Swagger UI page under the Content-Security-Policy (settings: CONTENT_SECURITY_POLICY).

The split view serves the page's start-up script as a separate same-origin file
(`?script`), so script-src stays 'self' here as everywhere: no inline script runs. Styles
are relaxed on this page alone: the sidecar's template carries a `<style>` block, Swagger UI
writes inline styles as it renders (swagger-api/swagger-ui#3370), and its stylesheet draws
its icons as `data:` SVG images (#7540). Inline styles cannot run code, and the page shows
only the hub's own schema.
"""

from csp.decorators import csp_update
from drf_spectacular.views import SpectacularSwaggerSplitView

DOCS_POLICY = {"style-src": ["'unsafe-inline'"], "img-src": ["data:"]}

swagger_ui = csp_update(DOCS_POLICY)(SpectacularSwaggerSplitView.as_view(url_name="v3:schema"))
