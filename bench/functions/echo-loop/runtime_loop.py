"""The least a runtime can do: one keep-alive http.client connection, /next -> /response,
echoing the event bytes unchanged. Stdlib only.

AWS_LAMBDA_RUNTIME_API is normally a bare host:port (Lambda, workbench); cargo-lambda's
--only-lambda-apis mode hands out a URL with a path prefix (http://127.0.0.1:9000/.rt/<fn>),
so both forms are accepted. Exits when the API goes away.
"""

import http.client
import os
import sys


def main() -> int:
    api = os.environ["AWS_LAMBDA_RUNTIME_API"]
    if "://" in api:
        api = api.split("://", 1)[1]
    hostport, _, prefix = api.partition("/")
    prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
    host, _, port = hostport.rpartition(":")
    base = f"{prefix}/2018-06-01/runtime/invocation"
    conn = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=None)
    next_path = base + "/next"
    while True:
        try:
            conn.request("GET", next_path)
            resp = conn.getresponse()
            event = resp.read()
            rid = resp.getheader("Lambda-Runtime-Aws-Request-Id")
            if resp.status != 200 or not rid:
                print(f"runtime_loop: /next answered {resp.status}", file=sys.stderr)
                return 1
            conn.request(
                "POST",
                f"{base}/{rid}/response",
                body=event,
                headers={"Content-Type": "application/json"},
            )
            resp = conn.getresponse()
            resp.read()
        except (OSError, http.client.HTTPException) as exc:
            print(f"runtime_loop: API gone ({exc!r}); exiting", file=sys.stderr)
            return 0


if __name__ == "__main__":
    sys.exit(main())
