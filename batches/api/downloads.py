"""Artifact downloads (structures, export files) from the configured storage.

The local filesystem streams the file through the hub (FileResponse, constant memory). Google
Cloud Storage answers 302 to a signed URL valid OMTX_SIGNED_URL_SECONDS, which names the
download's file name and type itself: the bytes go from the bucket to the client, never
through a web worker. Any other storage whose URLs are absolute (another cloud's, signed by
its backend) is redirected to as it is.
"""

from urllib.parse import urlsplit

from django.core.files.storage import storages
from django.http import FileResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.utils.http import content_disposition_header
from storages.backends.gcloud import GoogleCloudStorage  # type: ignore[import-untyped]


def artifact_response(name: str, *, filename: str, content_type: str) -> HttpResponseBase:
    storage = storages["default"]  # the instance default_storage stands for
    if isinstance(storage, GoogleCloudStorage):
        disposition = content_disposition_header(as_attachment=True, filename=filename)
        parameters = {"response_disposition": disposition, "response_type": content_type}
        return HttpResponseRedirect(storage.url(name, parameters=parameters))
    url = storage.url(name)
    if urlsplit(url).scheme in ("http", "https"):
        return HttpResponseRedirect(url)
    return FileResponse(storage.open(name, "rb"), as_attachment=True, filename=filename, content_type=content_type)
