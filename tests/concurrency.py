"""Requests released at the same instant, for the limits that must hold under concurrency
(exact counts on MariaDB, where requests really run side by side)."""
import json
import threading
import urllib.error
import urllib.parse
import urllib.request


def post(url, data=None, headers=None, json_body=None, timeout=120):
    """POST a form (or `json_body` as JSON) and return the status code, 4xx included."""
    headers = dict(headers or {})
    if json_body is not None:
        body = json.dumps(json_body).encode()
        headers["Content-Type"] = "application/json"
    else:
        body = urllib.parse.urlencode(data or {}).encode()
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def get(url, headers=None, timeout=120):
    """GET and return the status code, 4xx included."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def at_once(n, call, timeout=180):
    """Run call(i) for i in range(n) in n threads released together; their results, sorted."""
    barrier = threading.Barrier(n)
    results, lock = [], threading.Lock()

    def worker(i):
        barrier.wait()
        result = call(i)
        with lock:
            results.append(result)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert len(results) == n, f"{n - len(results)} of {n} concurrent calls did not finish"
    return sorted(results)
