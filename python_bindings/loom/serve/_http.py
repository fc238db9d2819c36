"""What an HTTP deployment receives and may return.

A replica's __call__ gets a Request shaped like Starlette's (`method`,
`url.path`, `query_params`, `headers`, `await request.body()`,
`await request.json()`). It may return a Response, a Starlette response,
bytes (application/octet-stream), a str (text/plain), or anything JSON can
write (application/json)."""
import json
import urllib.parse


class _URL:
    def __init__(self, path, query):
        self.path = path
        self.query = query

    def __str__(self):
        return self.path + (f"?{self.query}" if self.query else "")


class Headers(dict):
    """Header names in lower case; get() and [] take any case."""

    def __getitem__(self, name):
        return super().__getitem__(name.lower())

    def get(self, name, default=None):
        return super().get(name.lower(), default)

    def __contains__(self, name):
        return super().__contains__(name.lower())


class Request:
    def __init__(self, method, path, query, headers, body, route_prefix):
        self.method = method
        self.url = _URL(path, query)
        self.headers = Headers(headers)
        self.query_params = {
            k: v[-1] for k, v in urllib.parse.parse_qs(
                query, keep_blank_values=True).items()}
        self.route_prefix = route_prefix
        self.data = bytes(body)  # the body, for sync code

    @classmethod
    def from_wire(cls, fields):
        return cls(*fields)

    @property
    def path(self):
        return self.url.path

    async def body(self):
        return self.data

    async def json(self):
        """The body as JSON; BadRequestError (HTTP 400) when it is not."""
        try:
            return json.loads(self.data)
        except ValueError as e:
            from loom.serve.exceptions import BadRequestError
            raise BadRequestError(f"the request body is not JSON: {e}") \
                from None

    @property
    def text(self):
        return self.data.decode()

    def __repr__(self):
        return f"<Request {self.method} {self.url}>"


class Response:
    """A reply with its status, body, type and headers."""

    def __init__(self, content=b"", status_code=200, headers=None,
                 media_type=None):
        if isinstance(content, str):
            content = content.encode()
            media_type = media_type or "text/plain; charset=utf-8"
        elif not isinstance(content, (bytes, bytearray, memoryview)):
            content = json.dumps(content).encode()
            media_type = media_type or "application/json"
        self.body = bytes(content)
        self.status_code = int(status_code)
        self.headers = dict(headers or {})
        self.media_type = media_type or "application/octet-stream"


def to_answer(result):
    """[status, content type, headers, body]: what the ingress writes."""
    if isinstance(result, Response):
        return [result.status_code, result.media_type,
                list(result.headers.items()), result.body]
    if hasattr(result, "status_code") and hasattr(result, "body"):
        # A Starlette response (duck-typed: Starlette need not be here).
        headers = [(k, v) for k, v in result.headers.items()
                   if k.lower() not in ("content-length", "content-type")]
        media = result.headers.get("content-type") or \
            getattr(result, "media_type", None) or "application/octet-stream"
        return [int(result.status_code), media, headers, bytes(result.body)]
    if isinstance(result, (bytes, bytearray, memoryview)):
        return [200, "application/octet-stream", [], bytes(result)]
    if isinstance(result, str):
        return [200, "text/plain; charset=utf-8", [], result.encode()]
    return [200, "application/json", [], json.dumps(result).encode()]


def chunk(value):
    """A streamed chunk as bytes: bytes as they are, str encoded, anything
    else as a line of JSON."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    return (json.dumps(value) + "\n").encode()


def status_of(exc):
    """The HTTP status a deployment's exception answers with."""
    from loom.serve.exceptions import BadRequestError
    return 400 if isinstance(exc, BadRequestError) else 500


def error_answer(status, exc):
    body = json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode()
    return [status, "application/json", [], body]
