"""A client of a model endpoint that retries the way docs/scaling.md asks: a 503 is retried,
after its Retry-After when it has one (a task shedding load answers so), else with exponential
backoff (the load balancer's own 503 while a service at zero tasks wakes up), each wait with up
to as much again of random jitter so that refused clients do not come back together.
Standard library only; test/integ/predict-client.test.ts runs it.

    from predict_client import predict
    predict("https://iris.ml.example.com", [5.1, 3.5, 1.4, 0.2])
"""

import json
import random
import time
import urllib.error
import urllib.request


def predict(url: str, features: list, give_up_after: float = 600.0, request_timeout: float = 30.0) -> dict:
    """POST {url}/predict with one row; the answer's JSON. Raises urllib.error.HTTPError for any
    other error status, or for a 503 still there after `give_up_after` seconds."""
    body = json.dumps({"features": features}).encode()
    deadline = time.monotonic() + give_up_after
    backoff = 1.0
    while True:
        request = urllib.request.Request(f"{url}/predict", data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=request_timeout) as response:
                return json.load(response)
        except urllib.error.HTTPError as err:
            if err.code != 503:
                raise
            retry_after = (err.headers.get("Retry-After") or "").strip()
            if retry_after.isdigit():
                wait = float(retry_after)
            else:
                wait, backoff = backoff, min(backoff * 2, 30.0)
            wait *= 1 + random.random()
            if time.monotonic() + wait > deadline:
                raise
            time.sleep(wait)
